import type { FastifyReply, FastifyRequest } from 'fastify'
import { writes } from '../logger.js'

/** Which client and tenant a request was about, once a route knows (the token endpoint, a bearer check). */
const about = new WeakMap<FastifyRequest, { clientId: string; tenantId: string | null }>()

export function logAbout(request: FastifyRequest, who: { clientId: string; tenantId: string | null }): void {
  about.set(request, who)
}

/** Probes and scrapes: every few seconds from the platform, at debug so they do not drown the rest. */
const quiet = new Set(['/healthz', '/readyz', '/metrics'])

/**
 * One structured line per request, when its response is sent (from the onResponse hook of
 * operations.ts): method, route pattern, status, duration, request id (pino's `reqId`), the client and
 * tenant when known, and the address. The route pattern,
 * never the URL: query strings carry codes and tokens (Field Nation's access_token, fieldmargin's code),
 * paths carry client ids and event ids better kept as a pattern for grouping. No header, cookie or body
 * is read, so no secret can reach the log from here.
 */
export function logRequest(request: FastifyRequest, reply: FastifyReply, url: string | undefined): void {
  const route = url ?? '(unrouted)'
  const level = quiet.has(route) ? 'debug' : 'info'
  if (!writes(request.log.level, level)) return
  const who = about.get(request) ?? (request.principal ? { clientId: request.principal.clientId, tenantId: request.principal.tenantId } : undefined)
  request.log[level](
    {
      method: request.method,
      route,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      address: request.ip,
      ...(who ? { client_id: who.clientId, tenant: who.tenantId } : {}),
    },
    'request',
  )
}
