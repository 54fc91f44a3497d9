/**
 * The protected resources, typed as the server returns them (packages/server/src/routes/resources.ts
 * and api.ts). Deliberately thin: one object per route with list, get and create, and cursor iteration,
 * so the SDK never hides what goes over the wire.
 */
import type { ApiCaller, CallOptions } from './api-caller.js'

/** One page of a list, newest first. `next_cursor` is null on the last page. */
export interface Page<T> {
  results: T[]
  next_cursor: string | null
}

export interface ListOptions extends CallOptions {
  /** 1 to 100; the server's default is 25. */
  limit?: number
  cursor?: string
}

/** Who made a record: an app (client credentials or a connection) or a person. */
export type CreatedBy = { client_id: string } | { user_id: string }

export interface ApiRecord {
  id: string
  created_by: CreatedBy
  /** ISO 8601. */
  created_at: string
}

export type WorkOrderStatus = 'draft' | 'published' | 'assigned' | 'work_done' | 'approved'
/** Field Nation work orders: `created_by` is the client_id itself. */
export interface WorkOrder {
  id: string
  title: string
  status: WorkOrderStatus
  created_by: string
  created_at: string
}
export interface NewWorkOrder {
  title: string
  status?: WorkOrderStatus
}

export interface NewLead {
  name: string
  email?: string
  phone?: string
  notes?: string
}
export type Lead = ApiRecord & NewLead
export interface NewCustomer {
  name: string
  email?: string
  phone?: string
  address?: string
}
export type Customer = ApiRecord & NewCustomer

/** [longitude, latitude] or whatever pair the integration uses consistently; the server stores two numbers. */
export type Point = [number, number]
export interface NewField {
  name: string
  boundary?: Point[]
  area_ha?: number
}
export type Field = ApiRecord & NewField
export interface NewFieldMap {
  field_id: string
  name: string
  features?: Record<string, unknown>[]
}
export type FieldMap = ApiRecord & NewFieldMap
export interface NewFarmMap {
  name: string
  features?: Record<string, unknown>[]
}
export type FarmMap = ApiRecord & NewFarmMap
export interface NewVehicleLocation {
  vehicle_id: string
  position: Point
  recorded_at?: string
}
export type VehicleLocation = ApiRecord & NewVehicleLocation
export interface NewSensorReading {
  sensor_id: string
  value: number
  unit?: string
  recorded_at?: string
}
export type SensorReading = ApiRecord & NewSensorReading
export interface NewAlert {
  title: string
  severity?: 'info' | 'warning' | 'critical'
  field_id?: string
  message?: string
}
export type Alert = ApiRecord & NewAlert

/** List and create: every route has these. */
export class ListCreate<T, New> {
  constructor(
    protected readonly caller: ApiCaller,
    readonly path: string,
  ) {}

  list(opts: ListOptions = {}): Promise<Page<T>> {
    return this.caller.call<Page<T>>({ method: 'GET', path: this.path, query: { limit: opts.limit, cursor: opts.cursor }, signal: opts.signal })
  }

  /** Every page from `cursor` (or the newest) on, one request per page, as they are consumed. */
  async *pages(opts: ListOptions = {}): AsyncGenerator<Page<T>, void, undefined> {
    let cursor = opts.cursor
    for (;;) {
      const page = await this.list({ ...opts, cursor })
      yield page
      if (!page.next_cursor) return
      cursor = page.next_cursor
    }
  }

  /** Every record, newest first: `for await (const r of api.fields.all()) …`. */
  async *all(opts: ListOptions = {}): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages(opts)) yield* page.results
  }

  /** Not retried on a lost answer (it may have been created); 429 is retried, as nothing was done. */
  create(body: New, opts: CallOptions = {}): Promise<T> {
    return this.caller.call<T>({ method: 'POST', path: this.path, body, signal: opts.signal })
  }
}

/** Routes that also read one record: `GET {path}/{id}`. An unknown id is a `not_found` error. */
export class Collection<T, New> extends ListCreate<T, New> {
  get(id: string, opts: CallOptions = {}): Promise<T> {
    return this.caller.call<T>({ method: 'GET', path: `${this.path}/${encodeURIComponent(id)}`, signal: opts.signal })
  }
}

/**
 * The protected API for one token source. Which calls succeed depends on the token's scopes: a call
 * without the scope it needs fails with code `missing_scope` and the scope in `err.scope`.
 */
export class FieldgateApi {
  /** Field Nation: the tenant's work orders (scope `api`). */
  readonly workOrders: ListCreate<WorkOrder, NewWorkOrder>
  /** FieldEdge: the tenant's leads (scope `api`). */
  readonly leads: Collection<Lead, NewLead>
  /** FieldEdge: the tenant's customers (scope `api`). */
  readonly customers: Collection<Customer, NewCustomer>
  /** fieldmargin: fields (`maps:write` to create; `fields:read:all` reads everyone's, not only yours). */
  readonly fields: Collection<Field, NewField>
  readonly fieldMaps: Collection<FieldMap, NewFieldMap>
  readonly farmMaps: Collection<FarmMap, NewFarmMap>
  /** `vehicles:write` to create. */
  readonly vehicleLocations: Collection<VehicleLocation, NewVehicleLocation>
  /** `sensors:write` to create. */
  readonly sensorReadings: Collection<SensorReading, NewSensorReading>
  /** `alerts:write` to create. */
  readonly alerts: Collection<Alert, NewAlert>

  constructor(readonly caller: ApiCaller) {
    this.workOrders = new ListCreate(caller, '/api/rest/v2/workorders')
    this.leads = new Collection(caller, '/api/v1/leads')
    this.customers = new Collection(caller, '/api/v1/customers')
    this.fields = new Collection(caller, '/v1/fields')
    this.fieldMaps = new Collection(caller, '/v1/field-maps')
    this.farmMaps = new Collection(caller, '/v1/farm-maps')
    this.vehicleLocations = new Collection(caller, '/v1/vehicle-locations')
    this.sensorReadings = new Collection(caller, '/v1/sensor-readings')
    this.alerts = new Collection(caller, '/v1/alerts')
  }
}
