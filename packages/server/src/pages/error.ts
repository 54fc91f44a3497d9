import { html } from './html.js'
import type { Page } from './layout.js'

export const errorPage = (p: { csrf: string; title: string; message: string; user?: { email: string } | undefined }): Page => ({
  title: p.title,
  user: p.user,
  csrf: p.csrf,
  body: html`<h1>${p.title}</h1><p role="alert">${p.message}</p>`,
})
