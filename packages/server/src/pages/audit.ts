import type { AuditEntry } from '@fieldgate/core'
import { html, type SafeHtml } from './html.js'

/** The audit log as people read it: when, who (from which address), what, on which app and tenant. */
export const auditTable = (entries: AuditEntry[]): SafeHtml => html`<table class="audit">
  <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Address</th><th scope="col">What</th><th scope="col">App (client_id)</th><th scope="col">Tenant</th></tr></thead>
  <tbody>${entries.map(
    (e) => html`<tr><td>${new Date(e.at).toISOString().replace('T', ' ').slice(0, 19)}</td><td>${e.actor}</td><td>${e.address ?? ''}</td>
    <td>${e.action}</td><td>${e.clientId ? html`<code>${e.clientId}</code>` : ''}</td><td>${e.tenantId ? html`<code>${e.tenantId}</code>` : ''}</td></tr>`,
  )}</tbody>
</table>`
