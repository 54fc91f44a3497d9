import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import {
  listFilter, readable, recordCreatedEvents, requireWrite, resourceKinds, type ApiRecord, type CoreContext, type ResourceKind,
} from '@fieldgate/core'
import { requireBearer } from '../plugins/bearer.js'
import { cursorOf, parseCursor } from '../plugins/cursor.js'
import { principalLimits } from '../plugins/rate-limit.js'

type Schema = Record<string, unknown>

/** One route of the resource API: where it lives, what it stores, and the body it accepts. */
interface ResourceRoute {
  path: string
  resource: ResourceKind
  name: string
  body: { properties: Record<string, Schema>; required: string[] }
}

const text = (maxLength = 500) => ({ type: 'string', minLength: 1, maxLength, pattern: '^[^\\u0000]*$' })
const number = { type: 'number' }
const time = { type: 'string', format: 'date-time' }
const point = { type: 'array', items: number, minItems: 2, maxItems: 2 }
const polygon = { type: 'array', items: point, minItems: 4, maxItems: 10_000 }

/** The route table: FieldEdge's leads and customers, fieldmargin's farm data. Work orders are in api.ts. */
export const resourceRoutes: ResourceRoute[] = [
  { path: '/api/v1/leads', resource: resourceKinds.lead, name: 'lead', body: { properties: { name: text(200), email: text(320), phone: text(40), notes: text(2000) }, required: ['name'] } },
  { path: '/api/v1/customers', resource: resourceKinds.customer, name: 'customer', body: { properties: { name: text(200), email: text(320), phone: text(40), address: text(500) }, required: ['name'] } },
  { path: '/v1/fields', resource: resourceKinds.field, name: 'field', body: { properties: { name: text(200), boundary: polygon, area_ha: number }, required: ['name'] } },
  { path: '/v1/field-maps', resource: resourceKinds.fieldMap, name: 'field map', body: { properties: { field_id: text(64), name: text(200), features: { type: 'array', maxItems: 10_000, items: { type: 'object' } } }, required: ['field_id', 'name'] } },
  { path: '/v1/farm-maps', resource: resourceKinds.farmMap, name: 'farm map', body: { properties: { name: text(200), features: { type: 'array', maxItems: 10_000, items: { type: 'object' } } }, required: ['name'] } },
  { path: '/v1/vehicle-locations', resource: resourceKinds.vehicleLocation, name: 'vehicle location', body: { properties: { vehicle_id: text(100), position: point, recorded_at: time }, required: ['vehicle_id', 'position'] } },
  { path: '/v1/sensor-readings', resource: resourceKinds.sensorReading, name: 'sensor reading', body: { properties: { sensor_id: text(100), value: number, unit: text(20), recorded_at: time }, required: ['sensor_id', 'value'] } },
  { path: '/v1/alerts', resource: resourceKinds.alert, name: 'alert', body: { properties: { title: text(200), severity: { type: 'string', enum: ['info', 'warning', 'critical'] }, field_id: text(64), message: text(2000) }, required: ['title'] } },
]

/** What a caller sees of a record: its fields, who made it, when. */
export const publicRecord = (r: ApiRecord) => ({
  id: r.id, ...r.data,
  created_by: r.createdByClientId ? { client_id: r.createdByClientId } : { user_id: r.createdByUserId },
  created_at: new Date(r.createdAt).toISOString(),
})

const security = [{ accessToken: [] }]
const errorBody = { type: 'object', properties: { error: { type: 'string' }, error_description: { type: 'string' }, needed: { type: 'string' } } }

/**
 * The resource API: for each route, list (newest first, cursor pages), read one, create. Reading and
 * writing follow core/resources.ts: what a token may see, and missing_scope when it lacks a scope.
 */
export async function resourceApiRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  // At onRequest, so the write-scope check before body validation already knows the caller.
  app.addHook('onRequest', requireBearer(ctx))
  app.addHook('onRequest', principalLimits(app))

  for (const route of resourceRoutes) {
    const { resource } = route
    const tags = ['resources']
    const scopeNote = resource.visibility === 'tenant'
      ? `Needs \`${resource.readScope}\`.`
      : `Lists what the caller created${resource.readAllScope ? `; with \`${resource.readAllScope}\`, everyone's` : ''}.`

    app.get(route.path, {
      schema: {
        tags, security, summary: `List ${route.name}s. ${scopeNote}`,
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 25 }, cursor: { type: 'string', maxLength: 200 }, access_token: { type: 'string' } },
        },
        response: { 403: errorBody },
      },
    }, async (request) => {
      const { limit, cursor } = request.query as { limit: number; cursor?: string }
      const filter = listFilter(request.principal, resource)
      const records = await ctx.storage.listRecords(request.principal.tenantId, resource.kind, { limit, ...filter, ...(cursor ? { before: parseCursor(cursor) } : {}) })
      const last = records.length === limit ? records[records.length - 1] : undefined
      return { results: records.map(publicRecord), next_cursor: last ? cursorOf(last) : null }
    })

    app.get(`${route.path}/:id`, {
      schema: {
        tags, security, summary: `Read one ${route.name}. ${scopeNote}`,
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64, pattern: '^[^\\u0000]*$' } }, required: ['id'] },
        response: { 403: errorBody, 404: errorBody },
      },
    }, async (request, reply) => {
      const { id } = request.params as { id: string }
      const record = readable(request.principal, resource, await ctx.storage.getRecord(request.principal.tenantId, resource.kind, id))
      if (!record) return reply.code(404).send({ error: 'not_found', error_description: `no ${route.name} ${id.slice(0, 64)}` })
      return publicRecord(record)
    })

    app.post(route.path, {
      schema: {
        tags, security, summary: `Create a ${route.name}. Needs \`${resource.writeScope}\`.`,
        body: { type: 'object', additionalProperties: false, ...route.body },
        response: { 201: { type: 'object', additionalProperties: true }, 403: errorBody },
      },
      // The scope is checked before the body, so a caller without it learns which scope it lacks.
      preValidation: async (request) => requireWrite(request.principal, resource),
    }, async (request, reply) => {
      const { principal } = request
      const now = ctx.now()
      const record: ApiRecord = {
        id: randomUUID(), tenantId: principal.tenantId, kind: resource.kind, data: request.body as Record<string, unknown>,
        createdByClientId: principal.clientId, createdByUserId: null, createdAt: now,
      }
      // The Data API hears of it, from the same transaction.
      await ctx.storage.createRecord(record, { events: await recordCreatedEvents(ctx.storage, resource, record, publicRecord(record), now) })
      return reply.code(201).send(publicRecord(record))
    })
  }
}
