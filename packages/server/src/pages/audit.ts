import type { AuditEntry } from '@fieldgate/core'
import type { Words } from './brand.js'
import { html, when, type SafeHtml } from './html.js'
import { actionLabel } from './labels.js'

/** The audit log as people read it: when, who (from which address), what, on which app and tenant. */
export const auditTable = (entries: AuditEntry[], words: Words): SafeHtml => html`<table class="audit">
  <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Address</th><th scope="col">What</th><th scope="col">App (client_id)</th><th scope="col">${words.Tenant}</th></tr></thead>
  <tbody>${entries.map(
    (e) => html`<tr><td data-label="When">${when(e.at)}</td><td data-label="Who">${e.actor}</td><td data-label="Address">${e.address ?? ''}</td>
    <td data-label="What">${actionLabel(e.action)}</td><td data-label="App">${e.clientId ? html`<code>${e.clientId}</code>` : ''}</td><td data-label="${words.Tenant}">${e.tenantId ? html`<code>${e.tenantId}</code>` : ''}</td></tr>`,
  )}</tbody>
</table>`
