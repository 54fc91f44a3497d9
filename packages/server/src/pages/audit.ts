import type { AuditEntry } from '@fieldgate/core'
import { html, type SafeHtml } from './html.js'

/** The audit log as people read it: when, who, what. */
export const auditTable = (entries: AuditEntry[]): SafeHtml => html`<table class="audit">
  <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th></tr></thead>
  <tbody>${entries.map((e) => html`<tr><td>${new Date(e.at).toISOString().replace('T', ' ').slice(0, 19)}</td><td>${e.actor}</td><td>${e.action}</td></tr>`)}</tbody>
</table>`
