import { html } from './html.js'
import { layout } from './layout.js'

export const errorPage = (p: { csrf: string; title: string; message: string; user?: { email: string } | undefined }): string =>
  layout({
    title: p.title,
    user: p.user,
    csrf: p.csrf,
    body: html`<h1>${p.title}</h1><p role="alert">${p.message}</p>`,
  })
