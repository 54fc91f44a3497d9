import { initials, isRegisteredClient, publisherOf, type App } from '@fieldgate/core'
import { html, type SafeHtml } from './html.js'

/** An app's logo, or a badge of its initials when it has none; decorative, since its name is beside it. */
export const appLogo = (a: App, size: 'small' | 'large' = 'small'): SafeHtml =>
  a.logoUrl
    ? html`<img class="app-logo ${size}" src="${a.logoUrl}" alt="" width="${size === 'large' ? 72 : 48}" height="${size === 'large' ? 72 : 48}">`
    : html`<span class="app-logo ${size} initials" aria-hidden="true">${initials(a.name)}</span>`

/**
 * The app a person is about to let in, as sign-in and consent show it: logo, name, publisher and the
 * site it sends them back to, so they can tell a look-alike from the real one (RFC 9700 §4.1: the
 * redirect's host is what a look-alike app cannot fake).
 */
export function appHead(app: App, opts: { returnTo?: string | undefined; lead?: string }): SafeHtml {
  const host = opts.returnTo ? hostOf(opts.returnTo) : undefined
  return html`<div class="app-head">
  ${appLogo(app)}
  <div>
    ${opts.lead ? html`<p class="muted">${opts.lead}</p>` : ''}
    <p><strong class="app">${app.name}</strong> <span class="muted">${origin(app)}</span></p>
    ${host ? html`<p class="muted">Sends you back to <strong>${host}</strong></p>` : ''}
  </div>
</div>`
}

/**
 * Who stands behind the app. A client that registered itself names its own publisher, so none is shown:
 * a metadata document's app is known by the host its client_id URL is on (draft-ietf-oauth-client-id-
 * metadata-document §7.5: show that host), a dynamically registered one only as having registered itself.
 */
const origin = (app: App): string => {
  if (!isRegisteredClient(app)) return `by ${publisherOf(app)}`
  return app.registration === 'metadata_document' ? `from ${hostOf(app.clientId) ?? app.clientId}` : 'registered itself'
}

const hostOf = (uri: string): string | undefined => {
  try {
    const url = new URL(uri)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : `${url.protocol}//`
  } catch {
    return undefined
  }
}
