import { insufficientScope, requireScope, type Principal } from './guard.js'
import { newEvent } from './events.js'
import type { ApiRecord, OutboxEvent } from './model.js'
import type { Storage } from './storage.js'

/**
 * The protected API's kinds of record and who may do what with them (fieldmargin: "an integration has
 * read access to any data that it has created"; reading all fields needs `fields:read:all`).
 */
export interface ResourceKind {
  kind: string
  /** Needed to create one. */
  writeScope: string
  /** `tenant`: whoever holds `readScope` reads the tenant's records. `own`: a caller reads what it created. */
  visibility: 'tenant' | 'own'
  readScope?: string
  /** Widens `own` reading to every record of the tenant, made by people and other integrations. */
  readAllScope?: string
}

export const resourceKinds = {
  workOrder: { kind: 'work_order', writeScope: 'api', visibility: 'tenant', readScope: 'api' },
  lead: { kind: 'lead', writeScope: 'api', visibility: 'tenant', readScope: 'api' },
  customer: { kind: 'customer', writeScope: 'api', visibility: 'tenant', readScope: 'api' },
  field: { kind: 'field', writeScope: 'maps:write', visibility: 'own', readAllScope: 'fields:read:all' },
  fieldMap: { kind: 'field_map', writeScope: 'maps:write', visibility: 'own' },
  farmMap: { kind: 'farm_map', writeScope: 'maps:write', visibility: 'own' },
  vehicleLocation: { kind: 'vehicle_location', writeScope: 'vehicles:write', visibility: 'own' },
  sensorReading: { kind: 'sensor_reading', writeScope: 'sensors:write', visibility: 'own' },
  alert: { kind: 'alert', writeScope: 'alerts:write', visibility: 'own' },
} as const satisfies Record<string, ResourceKind>

export function requireWrite(principal: Principal, resource: ResourceKind): void {
  requireScope(principal, resource.writeScope)
}

/** What a caller may list: the tenant's records, or only its own. */
export function listFilter(principal: Principal, resource: ResourceKind): { createdByClientId?: string } {
  if (resource.visibility === 'tenant') {
    if (resource.readScope) requireScope(principal, resource.readScope)
    return {}
  }
  return resource.readAllScope && principal.scopes.includes(resource.readAllScope) ? {} : { createdByClientId: principal.clientId }
}

/**
 * Whether a caller may read one record: undefined (then it is as good as absent) or the record. A
 * field someone else made, read without `fields:read:all`, is a missing_scope naming that scope.
 */
export function readable(principal: Principal, resource: ResourceKind, record: ApiRecord | undefined): ApiRecord | undefined {
  if (!record) return undefined
  const filter = listFilter(principal, resource)
  if (filter.createdByClientId === undefined || record.createdByClientId === filter.createdByClientId) return record
  if (resource.readAllScope) throw insufficientScope(principal, resource.readAllScope)
  return undefined
}

/**
 * The Data API's `record.created`: every app connected to the tenant that may read the record hears
 * of it (its creator, holders of the read scope, or of the read-all scope), each with its own event.
 */
export async function recordCreatedEvents(
  storage: Storage,
  resource: ResourceKind,
  record: Pick<ApiRecord, 'tenantId' | 'createdByClientId'>,
  shown: Record<string, unknown>,
  now: number,
): Promise<OutboxEvent[]> {
  const events: OutboxEvent[] = []
  for (const grant of await storage.listGrants({ tenantId: record.tenantId })) {
    if (grant.status !== 'active') continue
    const app = await storage.getApp(grant.appId)
    if (!app?.dataApiUrl) continue
    const reads =
      app.clientId === record.createdByClientId ||
      (resource.visibility === 'tenant' && resource.readScope !== undefined && grant.scopes.includes(resource.readScope)) ||
      (resource.readAllScope !== undefined && grant.scopes.includes(resource.readAllScope))
    if (reads) events.push(...newEvent(app, record.tenantId, 'record.created', { kind: resource.kind, record: shown }, now))
  }
  return events
}
