import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { recordCreatedEvents, requireScope, resourceKinds, type ApiRecord, type CoreContext } from '@fieldgate/core'
import { requireBearer } from '../plugins/bearer.js'
import { cursorOf, parseCursor } from '../plugins/cursor.js'
import { principalLimits } from '../plugins/rate-limit.js'
import { oneOf, pageQuery, strict, text } from '../schemas/common.js'

/**
 * The protected API: a tenant's own work orders (Field Nation's `/api/rest/v2/workorders`), scope `api`.
 * They are records of kind `work_order` in the store; `publicWorkOrder` gives them Field Nation's shape.
 */
export async function apiRoutes(fastify: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.addHook('preHandler', requireBearer(ctx))
  // Per token and per client, after the token is accepted: every route below is counted.
  app.addHook('preHandler', principalLimits(app))

  app.get(
    '/api/rest/v2/workorders',
    {
      schema: { querystring: pageQuery },
    },
    async (request) => {
      requireScope(request.principal, 'api')
      const { limit, cursor } = request.query
      const orders = await ctx.storage.listRecords(request.principal.tenantId, workOrders.kind, { limit, ...(cursor ? { before: parseCursor(cursor) } : {}) })
      const last = orders.length === limit ? orders[orders.length - 1] : undefined
      return { results: orders.map(publicWorkOrder), next_cursor: last ? cursorOf(last) : null }
    },
  )

  app.post(
    '/api/rest/v2/workorders',
    {
      schema: {
        body: strict({
          title: text(500, { minLength: 1 }),
          status: Type.Optional(oneOf(['draft', 'published', 'assigned', 'work_done', 'approved'])),
        }),
      },
    },
    async (request, reply) => {
      requireScope(request.principal, 'api')
      const body = request.body
      const now = ctx.now()
      const order: ApiRecord = {
        id: randomUUID(),
        tenantId: request.principal.tenantId,
        kind: workOrders.kind,
        data: { title: body.title, status: body.status ?? 'draft' },
        createdByClientId: request.principal.clientId,
        createdByUserId: null,
        createdAt: now,
      }
      // The Data API hears of it, from the same transaction.
      await ctx.storage.createRecord(order, { events: await recordCreatedEvents(ctx.storage, workOrders, order, publicWorkOrder(order), now) })
      return reply.code(201).send(publicWorkOrder(order))
    },
  )
}

const workOrders = resourceKinds.workOrder

/** Field Nation's shape of a work order, from the record it is stored as (its data: title and status). */
const publicWorkOrder = (w: ApiRecord) => ({
  id: w.id,
  title: String(w.data.title),
  status: String(w.data.status),
  created_by: w.createdByClientId,
  created_at: new Date(w.createdAt).toISOString(),
})
