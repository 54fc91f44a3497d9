import type { App } from '@fieldgate/core'
import { html, type SafeHtml } from './html.js'

/** Who publishes an app, as its listing names it; its contact address until it names itself. */
export const publisherOf = (app: App): string | undefined => app.contactEmail ?? undefined

/** Up to two letters standing in for a logo. */
export const initials = (name: string): string =>
  name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w.charAt(0).toUpperCase())
    .join('')

/** An app's logo, or its initials on the brand's colour; decorative beside its name (alt=""). */
export const appLogo = (app: App, logoUrl: string | null | undefined): SafeHtml =>
  logoUrl ? html`<img src="${logoUrl}" alt="" width="48" height="48">` : html`<span class="initials" aria-hidden="true">${initials(app.name)}</span>`

/**
 * The app a person is about to let in, as sign-in and consent show it: logo, name, publisher and the
 * site it sends them back to, so they can tell a look-alike from the real one (RFC 9700 §4.1: the
 * redirect's host is what a look-alike app cannot fake).
 */
export function appHead(app: App, opts: { logoUrl?: string | null; returnTo?: string | undefined; lead?: string }): SafeHtml {
  const publisher = publisherOf(app)
  const host = opts.returnTo ? hostOf(opts.returnTo) : undefined
  return html`<div class="app-head">
  ${appLogo(app, opts.logoUrl)}
  <div>
    ${opts.lead ? html`<p class="muted">${opts.lead}</p>` : ''}
    <p><strong class="app">${app.name}</strong>${publisher ? html` <span class="muted">by ${publisher}</span>` : ''}</p>
    ${host ? html`<p class="muted">Sends you back to <strong>${host}</strong></p>` : ''}
  </div>
</div>`
}

const hostOf = (uri: string): string | undefined => {
  try {
    const url = new URL(uri)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : `${url.protocol}//`
  } catch {
    return undefined
  }
}
