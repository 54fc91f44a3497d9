/**
 * Field sensors: a tiny service of its own, outside Fieldgate, that accepts Fieldgate access tokens
 * through @fieldgate/guard. Client-credentials JWTs are checked locally against Fieldgate's published
 * keys; opaque connection tokens (authorization code) by introspection, when CLIENT_ID and CLIENT_SECRET
 * are set. Readings are kept in memory, per tenant.
 *
 *   GET  /readings   the tenant's readings            scope sensors:write
 *   POST /readings   {"sensor":"…","value":1.5}       scope sensors:write
 *
 * Run: FIELDGATE_ISSUER=http://127.0.0.1:4400 PORT=4500 node examples/guarded-service/server.mjs
 */
import { createServer } from 'node:http'
import { GuardError, GuardUpstreamError, bearerToken, createGuard } from '@fieldgate/guard'

const issuer = process.env.FIELDGATE_ISSUER || 'http://127.0.0.1:4400'
const audience = process.env.FIELDGATE_AUDIENCE || `${issuer}/api`
const host = process.env.HOST || '127.0.0.1'
const port = Number(process.env.PORT ?? 4500)
const { CLIENT_ID: clientId, CLIENT_SECRET: clientSecret } = process.env

// Fieldgate has one scope for sensor data ("Provide sensor readings"); an integration reads what it wrote.
const SCOPE = 'sensors:write'

const guard = createGuard({
  issuer,
  audience,
  // Without credentials this service accepts JWTs only; opaque tokens are refused as invalid_token.
  ...(clientId && clientSecret ? { introspection: { clientId, clientSecret } } : {}),
})

/** tenant id → readings */
const readings = new Map()

const send = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

function fail(res, err) {
  // The caller's fault: the status, challenge and body Fieldgate's own API would answer.
  if (err instanceof GuardError) return send(res, err.status, err.toJSON(), { 'www-authenticate': err.wwwAuthenticate })
  // Fieldgate could not be asked (or refused our introspection credentials): say so in the log, not to the caller.
  if (err instanceof GuardUpstreamError) {
    console.error(`guarded-service: ${err.message}`)
    return send(res, err.status, err.toJSON())
  }
  console.error(err)
  return send(res, 500, { error: 'server_error', error_description: 'The server could not complete the request' })
}

async function readJson(req) {
  let size = 0
  const chunks = []
  for await (const chunk of req) {
    size += chunk.length
    if (size > 16_384) return undefined
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    return undefined
  }
}

async function handle(req, res) {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  if (path !== '/readings') return send(res, 404, { error: 'not_found', error_description: `no route for ${req.method} ${path}` })
  if (req.method !== 'GET' && req.method !== 'POST') return send(res, 405, { error: 'invalid_request', error_description: 'use GET or POST' }, { allow: 'GET, POST' })

  const principal = await guard.authenticate(bearerToken(req.headers, req.url))
  guard.requireScope(principal, SCOPE)
  const mine = readings.get(principal.tenantId) ?? []

  if (req.method === 'GET') {
    return send(res, 200, { tenant_id: principal.tenantId, results: mine.filter((r) => r.created_by === principal.clientId) })
  }
  const body = await readJson(req)
  if (!body || typeof body.sensor !== 'string' || !body.sensor || body.sensor.length > 100 || typeof body.value !== 'number' || !Number.isFinite(body.value)) {
    return send(res, 400, { error: 'invalid_request', error_description: 'send {"sensor": "<name>", "value": <number>}' })
  }
  const reading = { sensor: body.sensor, value: body.value, recorded_at: new Date().toISOString(), created_by: principal.clientId }
  readings.set(principal.tenantId, [...mine, reading])
  return send(res, 201, reading)
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => fail(res, err))
})

server.listen(port, host, () => {
  const address = server.address()
  console.log(`guarded-service listening on http://${host}:${address.port} (issuer ${issuer})`)
})

function stop(signal) {
  console.log(`guarded-service: ${signal}, stopping`)
  server.close(() => process.exit(0))
  server.closeAllConnections()
  setTimeout(() => process.exit(1), 3000).unref()
}
process.once('SIGINT', () => stop('SIGINT'))
process.once('SIGTERM', () => stop('SIGTERM'))
