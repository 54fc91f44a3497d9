import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import { InvalidToken, MissingToken, type Config } from '@fieldgate/core'
import { neverShed } from './load-shedding.js'

/**
 * `/metrics` where config.metrics says (see config.ts): on the public port openly only in
 * development, with a Bearer token when one is set, and on a listener of its own when
 * FIELDGATE_METRICS_LISTEN is set (bound when the app is ready, closed with it).
 */
export function registerMetricsEndpoints(app: FastifyInstance, config: Config, registry: Registry): void {
  const { listen, token } = config.metrics
  const authorized = tokenCheck(token)
  const onPublicPort = token !== undefined || (listen === undefined && !config.issuer.startsWith('https:'))
  app.get('/metrics', { config: neverShed }, async (request, reply) => {
    // Not there at all, as for any unknown path: nothing tells a prober it exists.
    if (!onPublicPort) return reply.callNotFound()
    const header = request.headers.authorization
    if (token !== undefined && !header) throw new MissingToken()
    if (!authorized(header)) throw new InvalidToken('The metrics token is not valid')
    return reply
      .header('content-type', registry.contentType)
      .header('cache-control', 'no-store')
      .send(await registry.metrics())
  })
  if (listen) separateListener(app, listen, registry, authorized)
}

/** Whether an Authorization header carries the token: SHA-256 of both, compared in constant time. */
function tokenCheck(token: string | undefined): (header: string | undefined) => boolean {
  if (token === undefined) return () => true
  const expected = sha256(token)
  return (header) => header !== undefined && /^bearer /i.test(header) && timingSafeEqual(sha256(header.slice(7).trim()), expected)
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest()

function separateListener(app: FastifyInstance, listen: NonNullable<Config['metrics']['listen']>, registry: Registry, authorized: (h: string | undefined) => boolean): void {
  const server: Server = createServer((req, res) => void answer(req, res, registry, authorized))
  server.keepAliveTimeout = 5000
  // Bound when the app is ready, so a taken port fails the start like the public port would.
  app.addHook('onReady', async () => {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail)
      server.listen(listen.port, listen.host, () => {
        server.off('error', fail)
        ok()
      })
    })
    const bound = server.address()
    app.log.info({ address: typeof bound === 'object' && bound ? `${bound.address}:${bound.port}` : bound }, 'metrics listening')
  })
  app.addHook('onClose', async () => {
    if (!server.listening) return
    // A scrape cut short at shutdown costs nothing; waiting for it could hold the drain.
    await new Promise<void>((ok) => {
      server.close(() => ok())
      server.closeAllConnections()
    })
  })
}

async function answer(req: IncomingMessage, res: ServerResponse, registry: Registry, authorized: (h: string | undefined) => boolean): Promise<void> {
  const path = (req.url ?? '').split('?')[0]
  const json = (status: number, body: object, headers: Record<string, string> = {}) =>
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(JSON.stringify(body))
  if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) return void json(404, { error: 'not_found', error_description: 'only GET /metrics here' })
  if (!authorized(req.headers.authorization)) {
    return void json(401, { error: 'invalid_token', error_description: 'a valid metrics token is required' }, { 'www-authenticate': 'Bearer realm="fieldgate"' })
  }
  try {
    const body = await registry.metrics()
    res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body)
  } catch {
    // A collector that reads the store (the Data API backlog) fails while the store is down.
    json(503, { error: 'temporarily_unavailable', error_description: 'metrics cannot be read right now' }, { 'retry-after': '1' })
  }
}
