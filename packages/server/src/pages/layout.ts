import type { Brand } from './brand.js'
import { html, type SafeHtml } from './html.js'

export interface PageFrame {
  title: string
  /** The signed-in person, for the header and its Sign out button; an operator also gets the console's link. */
  user?: { email: string; operator?: boolean } | undefined
  /** Room for tables (the operator console). */
  wide?: boolean
  /**
   * Sign-in and consent: a person on their way to an app sees the brand and the task, no site navigation
   * to wander off into (as GitHub's and Shopify's authorize pages do).
   */
  focused?: boolean
  /** The CSRF token every form on the page carries. */
  csrf: string
  body: SafeHtml
  /** A script from /assets, for a page that is better with one (a copy button); the page works without it. */
  script?: string
}

/** A page: its frame, or a frame drawn with the deployment's brand (its words for a tenant, its name). */
export type Page = PageFrame | ((brand: Brand) => PageFrame)

/** The site's sections, in the header of every page but the focused ones. */
const sections = (user: NonNullable<PageFrame['user']>) => [
  { href: '/connected-apps', label: 'Connected apps' },
  { href: '/marketplace', label: 'Marketplace' },
  { href: '/developer', label: 'Developer portal' },
  ...(user.operator ? [{ href: '/operator', label: 'Operator console' }] : []),
]

const current = (path: string, href: string) => path === href || path.startsWith(`${href}/`) || path.startsWith(`${href}?`)

const logo = (brand: Brand): SafeHtml =>
  html`<a class="brand" href="/">${brand.logoSrc ? html`<img src="${brand.logoSrc}" alt="" class="logo">` : ''}<span>${brand.name}</span></a>`

function header(brand: Brand, page: PageFrame, path: string): SafeHtml {
  const user = page.user
  return html`<header class="bar">
  ${logo(brand)}
  ${
    user && !page.focused
      ? html`<nav aria-label="${brand.name}">${sections(user).map((s) => html`<a href="${s.href}"${current(path, s.href) ? html` aria-current="page"` : ''}>${s.label}</a>`)}</nav>`
      : ''
  }
  ${
    user
      ? html`<form method="post" action="/logout" class="signout">
    <input type="hidden" name="csrf" value="${page.csrf}">
    <span class="who">${user.email}</span> <button type="submit" class="link">Sign out</button>
  </form>`
      : ''
  }
</header>`
}

function footer(brand: Brand): SafeHtml {
  const links = [
    { href: brand.supportUrl, label: 'Help' },
    { href: brand.termsUrl, label: 'Terms' },
    { href: brand.privacyUrl, label: 'Privacy' },
  ].filter((l) => l.href)
  return html`<footer class="foot">${links.length ? html`<nav aria-label="${brand.name} links">${links.map((l) => html`<a href="${l.href!}">${l.label}</a>`)}</nav>` : ''}</footer>`
}

/** The pieces of every page, which a platform's own template (FIELDGATE_BRAND_LAYOUT) places where it likes. */
function pieces(brand: Brand, page: PageFrame, path: string): Record<string, SafeHtml | string> {
  return {
    lang: 'en',
    title: html`${page.title} · ${brand.name}`,
    head: html`<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/fieldgate.css">
<script src="/assets/pages.js" defer></script>
${page.script ? html`<script src="${page.script}" defer></script>` : ''}`,
    header: html`<a class="skip" href="#main">Skip to content</a>
${header(brand, page, path)}`,
    main: html`<main id="main" tabindex="-1" class="${[page.wide ? 'wide' : '', page.focused ? 'focused' : ''].filter(Boolean).join(' ')}">
${page.body}
</main>`,
    footer: footer(brand),
  }
}

const defaultTemplate = `<!doctype html>
<html lang="{{lang}}">
<head>
{{head}}
<title>{{title}}</title>
</head>
<body>
{{header}}
{{main}}
{{footer}}
</body>
</html>
`

/** Every page: one stylesheet and one small script from this origin, a header with who is signed in. */
export function renderPage(brand: Brand, page: Page, path: string): string {
  const frame = typeof page === 'function' ? page(brand) : page
  const parts = pieces(brand, frame, path)
  // One pass, so nothing a page contains is ever read as a placeholder.
  return (brand.layout ?? defaultTemplate).replace(/\{\{(\w+)\}\}/g, (whole, name: string) => String(parts[name] ?? whole))
}

/** The brand's colours, ahead of the stylesheet that uses them. */
export const stylesheetFor = (brand: Brand): string => `:root { --accent: ${brand.color}; --accent-ink: ${brand.onColor}; --accent-text: ${brand.textColor}; }\n${stylesheet}`

export const stylesheet = `
:root { color-scheme: light; --ink: #1d2a21; --muted: #56645a; --line: #d5ddd6; --field: #6b7a6f; --bad: #a32020; --page: #f4f6f2; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--page); overflow-wrap: break-word; }
a { color: var(--accent-text); }
.skip { position: absolute; left: .5rem; top: -3rem; padding: .5rem .75rem; background: #fff; border: 2px solid var(--accent-text); border-radius: .4rem; z-index: 10; }
.skip:focus { top: .5rem; }
.bar { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center; gap: .5rem 1.5rem; padding: .75rem 1.5rem; background: #fff; border-bottom: 3px solid var(--accent); }
.brand { display: inline-flex; align-items: center; gap: .5rem; font-weight: 700; letter-spacing: .02em; color: var(--ink); text-decoration: none; }
.brand .logo { height: 2rem; width: auto; max-width: 10rem; }
.bar nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; flex: 1; }
.bar nav a { text-decoration: none; padding: .2rem 0; border-bottom: 2px solid transparent; }
.bar nav a[aria-current=page] { color: var(--ink); font-weight: 600; border-bottom-color: var(--accent); }
.signout { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: 0; color: var(--muted); }
.signout .who { overflow-wrap: anywhere; }
main { max-width: 40rem; margin: 2.5rem auto; padding: 2rem; background: #fff; border: 1px solid var(--line); border-radius: .75rem; }
main.wide { max-width: 76rem; }
main.focused { max-width: 28rem; }
main:focus { outline: none; }
.foot { max-width: 40rem; margin: 0 auto 2rem; padding: 0 1rem; color: var(--muted); font-size: .9rem; }
.foot nav { display: flex; gap: 1rem; justify-content: center; }
main > p[role=status]:not(.muted) { background: #e8f3ea; border: 1px solid #8fc39a; padding: .6rem .75rem; border-radius: .4rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
p { margin: .5rem 0; }
code { overflow-wrap: anywhere; }
label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
input[type=email], input[type=password], input[type=search], input[type=text], input[type=url], select, textarea { width: 100%; max-width: 100%; padding: .6rem .7rem; font: inherit; border: 1px solid var(--field); border-radius: .4rem; background: #fff; color: var(--ink); }
input:focus, select:focus, textarea:focus, button:focus, a:focus { outline: 3px solid var(--accent); outline-offset: 2px; }
[aria-invalid=true] { border-color: var(--bad); border-width: 2px; }
button { font: inherit; padding: .6rem 1.2rem; border-radius: .4rem; border: 1px solid var(--accent-text); background: #fff; color: var(--accent-text); cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-ink); }
button.link { border: 0; padding: 0; text-decoration: underline; background: none; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; margin-top: 1.5rem; }
.error { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
ul.scopes { padding: 0; list-style: none; }
ul.scopes li { padding: .6rem 0; border-top: 1px solid var(--line); }
nav { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; }
fieldset { margin: 1rem 0 0; border: 1px solid var(--line); border-radius: .4rem; min-width: 0; }
label.check { font-weight: 400; display: block; margin: .4rem 0; }
.hint { margin: 0 0 .25rem; font-size: .9rem; }
.warning { background: #fff6dc; border: 1px solid #e2c25c; padding: .75rem; border-radius: .4rem; }
.copy { display: flex; gap: .5rem; }
button.danger { border-color: var(--bad); color: var(--bad); }
a.button { display: inline-block; padding: .6rem 1.2rem; border-radius: .4rem; background: var(--accent); color: var(--accent-ink); text-decoration: none; }
dl.facts dt { font-weight: 600; margin-top: .5rem; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
table { width: 100%; border-collapse: collapse; font-size: .9rem; }
table th, table td { text-align: left; padding: .3rem .4rem; border-top: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
.app-card { padding: .75rem 0; border-top: 1px solid var(--line); }
ul.scopes code, .connection code { font-weight: 700; }
.connection { padding: .75rem 0; border-top: 1px solid var(--line); }
.connection form { margin: .5rem 0 0; }
.tag { display: inline-block; font-size: .8rem; padding: 0 .4rem; border-radius: .3rem; background: #fff6dc; border: 1px solid #e2c25c; }
.search { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin: 1rem 0; }
.search input, .search select { width: auto; flex: 1 1 10rem; }
.search label { margin: 0; }
.pager { display: flex; gap: 1rem; margin-top: 1rem; }
.counts { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: .75rem; padding: 0; list-style: none; }
.counts li { border: 1px solid var(--line); border-radius: .5rem; padding: .75rem; }
.counts strong { display: block; font-size: 1.6rem; }
.compare { display: grid; grid-template-columns: 10rem 1fr 1fr; gap: .25rem .75rem; }
.compare .changed { background: #fff6dc; }
.decide { display: flex; gap: 1rem; flex-wrap: wrap; align-items: end; }
.decide form { flex: 1; min-width: min(16rem, 100%); }
.tag.bad { background: #fbe9e9; border-color: var(--bad); color: var(--bad); }
.app-head { display: flex; gap: .75rem; align-items: center; margin: 0 0 1rem; }
.app-head p { margin: 0; }
/* marketplace and portal */
.market-search, .delivery-filter { flex-wrap: wrap; }
.market-search input[type=search] { min-width: 12rem; }
.app-cards { margin: 1rem 0; }
.app-card { display: flex; gap: .75rem; align-items: flex-start; }
.app-card-text { min-width: 0; flex: 1; overflow-wrap: anywhere; }
.app-card h2 { margin: 0; font-size: 1.15rem; }
.app-card p { margin: .2rem 0; }
.publisher { color: var(--muted); }
.app-logo { flex: none; border-radius: .6rem; border: 1px solid var(--line); object-fit: cover; background: #fff; }
.app-logo.small { width: 48px; height: 48px; }
.app-logo.large { width: 72px; height: 72px; }
.app-logo.initials { display: inline-flex; align-items: center; justify-content: center; box-sizing: border-box; font-weight: 700; color: var(--accent-ink); background: var(--accent); border-color: var(--accent); }
.app-logo.small.initials { font-size: 1.1rem; }
.app-logo.large.initials { font-size: 1.6rem; }
.app-header { display: flex; gap: 1rem; align-items: center; overflow-wrap: anywhere; }
.app-header h1 { margin: 0; }
.app-header p { margin: .2rem 0; }
ul.categories { display: flex; flex-wrap: wrap; gap: .3rem; padding: 0; margin: .3rem 0; list-style: none; }
.lead { font-size: 1.1rem; }
ul.listing-links { padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; }
a.button.secondary { background: #fff; color: var(--accent-text); border: 1px solid var(--accent-text); }
.actions a.button { margin-left: .5rem; }
nav.sections { display: flex; flex-wrap: wrap; gap: .25rem 1rem; padding: .5rem 0; margin: 1rem 0; border-top: 1px solid var(--line); border-bottom: 1px solid var(--line); }
section[id] { scroll-margin-top: 1rem; }
ul.deliveries { padding: 0; list-style: none; }
.delivery { padding: .75rem 0; border-top: 1px solid var(--line); min-width: 0; overflow-wrap: anywhere; }
.delivery p { margin: .2rem 0; }
.delivery-label { font-weight: 700; font-size: .9rem; }
pre.delivery-body { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 16rem; overflow-y: auto; margin: .2rem 0; padding: .5rem; font-size: .85rem; background: #f4f6f2; border: 1px solid var(--line); border-radius: .4rem; }
ol.attempts { margin: .2rem 0; padding-left: 1.5rem; }
.delivery form { margin: .5rem 0 0; }
@media (max-width: 40rem) {
  .bar { padding: .6rem 1rem; }
  main { margin: 0 0 1.5rem; padding: 1.25rem 1rem; border-radius: 0; border-left: 0; border-right: 0; }
  .compare { grid-template-columns: 1fr; }
  .search label { flex-basis: 100%; }
  .search input, .search select { flex: 1 1 100%; }
  table, thead, tbody, tr, th, td { display: block; }
  table thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table tr { border-top: 1px solid var(--line); padding: .4rem 0; }
  table th, table td { border: 0; padding: .1rem 0; }
  table td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; }
}
`

/** The copy button of the page that shows a secret once; without script the field is still selectable. */
export const copyScript = `document.addEventListener('click', (event) => {
  const button = event.target.closest('[data-copy]')
  if (!button) return
  const field = document.getElementById(button.dataset.copy)
  field.select()
  navigator.clipboard.writeText(field.value).then(() => { button.textContent = 'Copied' }, () => {})
})
`

/**
 * On every page, and every page works without it: focus goes to the first field with an error (or the
 * error summary), and times are shown in the reader's own time zone and locale.
 */
export const pagesScript = `document.addEventListener('DOMContentLoaded', () => {
  const invalid = document.querySelector('[aria-invalid=true]') || document.querySelector('.error[role=alert]')
  if (invalid) {
    if (!invalid.matches('input, select, textarea, button, a')) invalid.setAttribute('tabindex', '-1')
    invalid.focus()
  }
  for (const time of document.querySelectorAll('time[datetime][data-local]')) {
    const at = new Date(time.getAttribute('datetime'))
    const style = time.dataset.local === 'date' ? { dateStyle: 'medium' } : { dateStyle: 'medium', timeStyle: 'medium' }
    if (!Number.isNaN(at.getTime())) time.textContent = at.toLocaleString(undefined, style)
  }
})
`
