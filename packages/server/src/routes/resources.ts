import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type, type TObject, type TSchema } from 'typebox'
import { listFilter, readable, recordCreatedEvents, requireWrite, resourceKinds, type ApiRecord, type CoreContext, type ResourceKind } from '@fieldgate/core'
import { requireBearer } from '../plugins/bearer.js'
import { cursorOf, parseCursor } from '../plugins/cursor.js'
import { principalLimits } from '../plugins/rate-limit.js'
import { errorBody, nullable, pageQuery, strict, text as anyText } from '../schemas/common.js'

/** One route of the resource API: where it lives, what it stores, and the body it accepts. */
interface ResourceRoute {
  path: string
  resource: ResourceKind
  name: string
  /** What a create accepts: the fields it names, nothing else. */
  body: TObject<Record<string, TSchema>>
}

const text = (maxLength = 500) => anyText(maxLength, { minLength: 1 })
const number = Type.Number()
const time = Type.String({ format: 'date-time' })
const point = Type.Array(number, { minItems: 2, maxItems: 2 })
const polygon = Type.Array(point, { minItems: 4, maxItems: 10_000 })
const features = Type.Array(Type.Object({}), { maxItems: 10_000 })
const optional = <P extends Record<string, TSchema>>(required: (keyof P & string)[], properties: P) =>
  strict(Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, required.includes(k) ? v : Type.Optional(v)])))

/** The route table: FieldEdge's leads and customers, fieldmargin's farm data. Work orders are in api.ts. */
export const resourceRoutes: ResourceRoute[] = [
  { path: '/api/v1/leads', resource: resourceKinds.lead, name: 'lead', body: optional(['name'], { name: text(200), email: text(320), phone: text(40), notes: text(2000) }) },
  {
    path: '/api/v1/customers',
    resource: resourceKinds.customer,
    name: 'customer',
    body: optional(['name'], { name: text(200), email: text(320), phone: text(40), address: text(500) }),
  },
  { path: '/v1/fields', resource: resourceKinds.field, name: 'field', body: optional(['name'], { name: text(200), boundary: polygon, area_ha: number }) },
  { path: '/v1/field-maps', resource: resourceKinds.fieldMap, name: 'field map', body: optional(['field_id', 'name'], { field_id: text(64), name: text(200), features }) },
  { path: '/v1/farm-maps', resource: resourceKinds.farmMap, name: 'farm map', body: optional(['name'], { name: text(200), features }) },
  {
    path: '/v1/vehicle-locations',
    resource: resourceKinds.vehicleLocation,
    name: 'vehicle location',
    body: optional(['vehicle_id', 'position'], { vehicle_id: text(100), position: point, recorded_at: time }),
  },
  {
    path: '/v1/sensor-readings',
    resource: resourceKinds.sensorReading,
    name: 'sensor reading',
    body: optional(['sensor_id', 'value'], { sensor_id: text(100), value: number, unit: text(20), recorded_at: time }),
  },
  {
    path: '/v1/alerts',
    resource: resourceKinds.alert,
    name: 'alert',
    body: optional(['title'], { title: text(200), severity: Type.Enum(['info', 'warning', 'critical'], { type: 'string' }), field_id: text(64), message: text(2000) }),
  },
]

/** What a caller sees of a record: its fields, who made it, when. */
export const publicRecord = (r: ApiRecord) => ({
  id: r.id,
  ...r.data,
  created_by: r.createdByClientId ? { client_id: r.createdByClientId } : { user_id: r.createdByUserId },
  created_at: new Date(r.createdAt).toISOString(),
})

const security = [{ accessToken: [] }]
/** A record as publicRecord shows it: its fields are its kind's, so the schema names none. */
const anyRecord = Type.Object({}, { additionalProperties: true })

/**
 * The resource API: for each route, list (newest first, cursor pages), read one, create. Reading and
 * writing follow core/resources.ts: what a token may see, and missing_scope when it lacks a scope.
 */
export async function resourceApiRoutes(fastify: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  // At onRequest, so the write-scope check before body validation already knows the caller.
  app.addHook('onRequest', requireBearer(ctx))
  app.addHook('onRequest', principalLimits(app))

  for (const route of resourceRoutes) {
    const { resource } = route
    const tags = ['resources']
    const scopeNote =
      resource.visibility === 'tenant'
        ? `Needs \`${resource.readScope}\`.`
        : `Lists what the caller created${resource.readAllScope ? `; with \`${resource.readAllScope}\`, everyone's` : ''}.`

    app.get(
      route.path,
      {
        schema: {
          tags,
          security,
          summary: `List ${route.name}s. ${scopeNote}`,
          querystring: pageQuery,
          response: { 200: Type.Object({ results: Type.Array(anyRecord), next_cursor: nullable(Type.String()) }), 403: errorBody },
        },
      },
      async (request) => {
        const { limit, cursor } = request.query
        const filter = listFilter(request.principal, resource)
        const records = await ctx.storage.listRecords(request.principal.tenantId, resource.kind, { limit, ...filter, ...(cursor ? { before: parseCursor(cursor) } : {}) })
        const last = records.length === limit ? records[records.length - 1] : undefined
        return { results: records.map(publicRecord), next_cursor: last ? cursorOf(last) : null }
      },
    )

    app.get(
      `${route.path}/:id`,
      {
        schema: {
          tags,
          security,
          summary: `Read one ${route.name}. ${scopeNote}`,
          params: Type.Object({ id: anyText(64) }),
          response: { 200: anyRecord, 403: errorBody, 404: errorBody },
        },
      },
      async (request, reply) => {
        const { id } = request.params
        const record = readable(request.principal, resource, await ctx.storage.getRecord(request.principal.tenantId, resource.kind, id))
        if (!record) return reply.code(404).send({ error: 'not_found', error_description: `no ${route.name} ${id.slice(0, 64)}` })
        return publicRecord(record)
      },
    )

    app.post(
      route.path,
      {
        schema: {
          tags,
          security,
          summary: `Create a ${route.name}. Needs \`${resource.writeScope}\`.`,
          body: route.body,
          response: { 201: anyRecord, 403: errorBody },
        },
        // The scope is checked before the body, so a caller without it learns which scope it lacks.
        preValidation: async (request) => requireWrite(request.principal, resource),
      },
      async (request, reply) => {
        const { principal } = request
        const now = ctx.now()
        const record: ApiRecord = {
          id: randomUUID(),
          tenantId: principal.tenantId,
          kind: resource.kind,
          data: request.body,
          createdByClientId: principal.clientId,
          createdByUserId: null,
          createdAt: now,
        }
        // The Data API hears of it, from the same transaction.
        await ctx.storage.createRecord(record, { events: await recordCreatedEvents(ctx.storage, resource, record, publicRecord(record), now) })
        return reply.code(201).send(publicRecord(record))
      },
    )
  }
}
