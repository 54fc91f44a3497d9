import { html, type SafeHtml } from './html.js'

export interface PageFrame {
  title: string
  /** The signed-in person, for the header and its Sign out button; an operator also gets the console's link. */
  user?: { email: string; operator?: boolean } | undefined
  /** Room for tables (the operator console). */
  wide?: boolean
  /** The CSRF token every form on the page carries. */
  csrf: string
  body: SafeHtml
  /** A script from /assets, for a page that is better with one (a copy button); the page works without it. */
  script?: string
}

/** Every page: one stylesheet from this origin, no script, a header with who is signed in. */
export function layout(page: PageFrame): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.title} · Fieldgate</title>
<link rel="stylesheet" href="/assets/fieldgate.css">
${page.script ? html`<script src="${page.script}" defer></script>` : ''}
</head>
<body>
<header class="bar">
  <nav aria-label="Fieldgate"><span class="brand">Fieldgate</span>
  ${page.user ? html`<a href="/connected-apps">Connected apps</a> <a href="/marketplace">Marketplace</a> <a href="/developer">Developer portal</a>${page.user.operator ? html` <a href="/operator">Operator console</a>` : ''}` : ''}</nav>
  ${
    page.user
      ? html`<form method="post" action="/logout" class="signout">
    <input type="hidden" name="csrf" value="${page.csrf}">
    <span>${page.user.email}</span> <button type="submit" class="link">Sign out</button>
  </form>`
      : ''
  }
</header>
<main${page.wide ? html` class="wide"` : ''}>
${page.body}
</main>
</body>
</html>
`.value
}

export const stylesheet = `
:root { color-scheme: light; --ink: #1d2a21; --muted: #56645a; --line: #d5ddd6; --accent: #2f6b3a; --accent-ink: #fff; --bad: #a32020; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f4f6f2; }
.bar { display: flex; justify-content: space-between; align-items: center; padding: .75rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; letter-spacing: .02em; }
.signout { display: flex; gap: .5rem; align-items: center; margin: 0; color: var(--muted); }
main { max-width: 40rem; margin: 2.5rem auto; padding: 2rem; background: #fff; border: 1px solid var(--line); border-radius: .75rem; }
main.wide { max-width: 76rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
p { margin: .5rem 0; }
label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
input[type=email], input[type=password], input[type=search], select { width: 100%; padding: .6rem .7rem; font: inherit; border: 1px solid #9aa89d; border-radius: .4rem; }
input:focus, select:focus, button:focus { outline: 3px solid #8fc39a; outline-offset: 1px; }
button { font: inherit; padding: .6rem 1.2rem; border-radius: .4rem; border: 1px solid var(--accent); background: #fff; color: var(--accent); cursor: pointer; }
button.primary { background: var(--accent); color: var(--accent-ink); }
button.link { border: 0; padding: 0; text-decoration: underline; background: none; }
.actions { display: flex; gap: .75rem; margin-top: 1.5rem; }
.error { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
ul.scopes { padding: 0; list-style: none; }
ul.scopes li { padding: .6rem 0; border-top: 1px solid var(--line); }
nav { display: flex; gap: 1rem; align-items: center; }
nav a { color: var(--accent); }
textarea { width: 100%; padding: .6rem .7rem; font: inherit; border: 1px solid #9aa89d; border-radius: .4rem; }
input[type=text], input[type=url] { width: 100%; padding: .6rem .7rem; font: inherit; border: 1px solid #9aa89d; border-radius: .4rem; }
fieldset { margin: 1rem 0 0; border: 1px solid var(--line); border-radius: .4rem; }
label.check { font-weight: 400; display: block; margin: .4rem 0; }
.hint { margin: 0 0 .25rem; font-size: .9rem; }
.warning { background: #fff6dc; border: 1px solid #e2c25c; padding: .75rem; border-radius: .4rem; }
.copy { display: flex; gap: .5rem; }
button.danger { border-color: var(--bad); color: var(--bad); }
a.button { display: inline-block; padding: .6rem 1.2rem; border-radius: .4rem; background: var(--accent); color: var(--accent-ink); text-decoration: none; }
dl.facts dt { font-weight: 600; margin-top: .5rem; }
dl.facts dd { margin: 0; }
table.audit { width: 100%; border-collapse: collapse; font-size: .9rem; }
table.audit th, table.audit td { text-align: left; padding: .3rem .4rem; border-top: 1px solid var(--line); }
.app-card { padding: .75rem 0; border-top: 1px solid var(--line); }
ul.scopes code, .connection code { font-weight: 700; }
.connection { padding: .75rem 0; border-top: 1px solid var(--line); }
.connection form { margin: .5rem 0 0; }
.tag { display: inline-block; font-size: .8rem; padding: 0 .4rem; border-radius: .3rem; background: #fff6dc; border: 1px solid #e2c25c; }
.search { display: flex; gap: .5rem; align-items: end; margin: 1rem 0; }
.search input, .search select { width: auto; flex: 1; }
.search label { margin: 0; }
.pager { display: flex; gap: 1rem; margin-top: 1rem; }
.counts { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: .75rem; padding: 0; list-style: none; }
.counts li { border: 1px solid var(--line); border-radius: .5rem; padding: .75rem; }
.counts strong { display: block; font-size: 1.6rem; }
.compare { display: grid; grid-template-columns: 10rem 1fr 1fr; gap: .25rem .75rem; }
.compare .changed { background: #fff6dc; }
.decide { display: flex; gap: 1rem; flex-wrap: wrap; align-items: end; }
.decide form { flex: 1; min-width: 16rem; }
.tag.bad { background: #fbe9e9; border-color: var(--bad); color: var(--bad); }
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
a.button.secondary { background: #fff; color: var(--accent); border: 1px solid var(--accent); }
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
