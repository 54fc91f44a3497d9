import { html, type SafeHtml } from './html.js'

/* Form fields every page builds the same way: label, hint, the input, and the error beside it. */

/** A message from the core, and the field it is about when it is about one (shown beside it). */
export interface FieldError {
  message: string
  field?: string
}

/** Hint and error ids the field's aria-describedby names, so a screen reader reads them with it. */
export const describedBy = (id: string, hint: string | undefined, error: FieldError | undefined): SafeHtml => {
  const ids = [hint ? `${id}-hint` : '', error?.field === id ? `${id}-error` : ''].filter(Boolean)
  return html`${ids.length ? html` aria-describedby="${ids.join(' ')}"` : ''}${error?.field === id ? html` aria-invalid="true"` : ''}`
}

export const fieldError = (id: string, error: FieldError | undefined): SafeHtml | string =>
  error?.field === id ? html`<p class="error field-error" id="${id}-error">${error.message}</p>` : ''

export const field = (id: string, label: string, value: string | undefined, error: FieldError | undefined, type = 'text', hint?: string, extra: SafeHtml | string = '') => html`
  <label for="${id}">${label}</label>
  ${hint ? html`<p class="muted hint" id="${id}-hint">${hint}</p>` : ''}
  <input id="${id}" name="${id}" type="${type}" value="${value ?? ''}"${describedBy(id, hint, error)}${extra}>
  ${fieldError(id, error)}`

/** The error at the top of a form: every message, with a link to its field when it has one. */
export const formError = (error: FieldError | undefined): SafeHtml | string =>
  error ? html`<p class="error" role="alert">${error.field ? html`<a href="#${error.field}">${error.message}</a>` : error.message}</p>` : ''
