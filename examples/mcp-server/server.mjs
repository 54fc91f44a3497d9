/**
 * Field operations over the Model Context Protocol: an MCP server (the official TypeScript SDK,
 * Streamable HTTP at /mcp) whose callers are AI agents holding Fieldgate access tokens. Every token is
 * checked by @fieldgate/guard with `introspectAll`, so a farmer's Disconnect cuts an agent off at its
 * next request. Each tool needs its scope; without it the SDK answers 403 insufficient_scope naming
 * the scope, and the agent asks the farmer for it (MCP authorization, step-up).
 *
 *   list_work_orders   the farm's work orders       scope api
 *   read_fields        the farm's fields            scope fields:read:all
 *   create_alert       {"title", "severity", …}     scope alerts:write
 *
 * The data is this server's own, in memory, per tenant: an MCP server must not pass the token it was
 * given on to another API (MCP authorization, "Token Passthrough").
 *
 * Run: FIELDGATE_ISSUER=http://127.0.0.1:4400 PORT=4600 CLIENT_ID=… CLIENT_SECRET=… node examples/mcp-server/server.mjs
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { GuardError, GuardUpstreamError, createGuard } from '@fieldgate/guard'
import { originValidation, toNodeHandler } from '@modelcontextprotocol/node'
import { McpServer, createMcpHandler, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/server'
import * as z from 'zod'

const issuer = process.env.FIELDGATE_ISSUER || 'http://127.0.0.1:4400'
const host = process.env.HOST || '127.0.0.1'
const port = Number(process.env.PORT ?? 4600)
const { CLIENT_ID: clientId, CLIENT_SECRET: clientSecret } = process.env
if (!clientId || !clientSecret) {
  console.error('mcp-server: set CLIENT_ID and CLIENT_SECRET to an app with the scope fieldgate:introspect (see README.md)')
  process.exit(2)
}

/** What each tool needs; `api` is also the scope an agent is told to start with (the 401 challenge). */
const SCOPES = { list_work_orders: 'api', read_fields: 'fields:read:all', create_alert: 'alerts:write' }
const BASE_SCOPE = SCOPES.list_work_orders
const MAX_BODY = 65_536

// ---- the data: per tenant, seeded on first use ----

/** tenant id → { workOrders, fields, alerts } */
const farms = new Map()

function farmOf(tenantId) {
  let farm = farms.get(tenantId)
  if (!farm) {
    farm = {
      workOrders: [
        { id: 'WO-1001', title: 'Replace the irrigation pump at the north pivot', status: 'open', field_id: 'F-1', due: '2026-05-04' },
        { id: 'WO-1002', title: 'Repair the fence along the east boundary', status: 'scheduled', field_id: 'F-2', due: '2026-05-11' },
      ],
      fields: [
        { id: 'F-1', name: 'North pivot', crop: 'maize', area_ha: 52.4 },
        { id: 'F-2', name: 'East paddock', crop: 'winter wheat', area_ha: 31.8 },
      ],
      alerts: [],
    }
    farms.set(tenantId, farm)
  }
  return farm
}

/**
 * The SDK's scope challenge for a tool: before the tool runs, a caller without `scope` gets 403 with
 * `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` (RFC 6750 §3.1) naming only what
 * this call lacks; the client adds it to what it already asked for (MCP authorization, step-up).
 */
const needs =
  (scope) =>
  ({ authInfo }) =>
    authInfo && !authInfo.scopes.includes(scope) ? { scopes: [scope], errorDescription: `This tool needs the scope ${scope}` } : undefined

/** A tool's answer: the JSON as text, which every MCP client shows, and the same as structured content. */
const answer = (value) => ({ content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value })

// ---- the MCP server: one per request (stateless), bound to the caller's tenant ----

function fieldOperations({ authInfo }) {
  const { tenantId } = authInfo.extra
  const farm = farmOf(tenantId)
  const server = new McpServer({ name: 'fieldgate-field-operations', version: '1.0.0' })

  server.registerTool(
    'list_work_orders',
    {
      title: 'List work orders',
      description: "The farm's work orders, optionally only those with one status",
      inputSchema: z.object({ status: z.enum(['open', 'scheduled', 'done']).optional() }),
      annotations: { readOnlyHint: true },
      scopeChallenge: needs(SCOPES.list_work_orders),
    },
    ({ status }) => answer({ tenant_id: tenantId, work_orders: farm.workOrders.filter((w) => !status || w.status === status) }),
  )

  server.registerTool(
    'read_fields',
    {
      title: 'Read fields',
      description: "The farm's fields: name, crop and area in hectares",
      annotations: { readOnlyHint: true },
      scopeChallenge: needs(SCOPES.read_fields),
    },
    () => answer({ tenant_id: tenantId, fields: farm.fields }),
  )

  server.registerTool(
    'create_alert',
    {
      title: 'Create an alert',
      description: 'Raise an alert for an issue on the farm, optionally on one field',
      inputSchema: z.object({
        title: z.string().min(1).max(200),
        severity: z.enum(['info', 'warning', 'critical']).default('warning'),
        field_id: z.string().max(64).optional(),
        message: z.string().max(2000).optional(),
      }),
      scopeChallenge: needs(SCOPES.create_alert),
    },
    ({ title, severity, field_id, message }) => {
      if (field_id && !farm.fields.some((f) => f.id === field_id)) {
        return { isError: true, content: [{ type: 'text', text: `No field ${field_id} on this farm` }] }
      }
      const alert = {
        id: randomUUID(),
        title,
        severity,
        ...(field_id ? { field_id } : {}),
        ...(message ? { message } : {}),
        created_by: authInfo.clientId,
        created_at: new Date().toISOString(),
      }
      farm.alerts.push(alert)
      return answer(alert)
    },
  )
  return server
}

// ---- HTTP: RFC 9728 metadata, the bearer check, then the SDK ----

const send = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

/**
 * The guard's refusal as Fieldgate's API words it, its challenge naming this server's RFC 9728 metadata
 * (§5.1) and, on a 401, the scope to start with (MCP authorization: "Scope Selection Strategy").
 */
function refuse(res, err, metadataUrl) {
  // Past the bearer check the SDK answers, errors included; a failure after it started can only end the response.
  if (res.headersSent) {
    console.error(err)
    return res.end()
  }
  if (err instanceof GuardError) {
    const challenge = err.status === 401 ? `${err.challenge(metadataUrl)}, scope="${BASE_SCOPE}"` : err.challenge(metadataUrl)
    return send(res, err.status, err.toJSON(), { 'www-authenticate': challenge })
  }
  // Fieldgate could not be asked (or refused our introspection credentials): say so in the log, not to the caller.
  if (err instanceof GuardUpstreamError) {
    console.error(`mcp-server: ${err.message}`)
    return send(res, err.status, err.toJSON())
  }
  console.error(err)
  return send(res, 500, { error: 'server_error', error_description: 'The server could not complete the request' })
}

/** The SDK's AuthInfo for a principal the guard accepted: what the tools and the scope challenges read. */
const authInfoOf = (token, principal, resource, metadataUrl) => ({
  token,
  clientId: principal.clientId,
  scopes: [...principal.scopes],
  ...(principal.expiresAt ? { expiresAt: Math.floor(principal.expiresAt / 1000) } : {}),
  resource: new URL(resource),
  resourceMetadataUrl: metadataUrl,
  extra: { tenantId: principal.tenantId, grantId: principal.grantId, subject: principal.subject },
})

function mcpService(resource) {
  const metadataUrl = getOAuthProtectedResourceMetadataUrl(new URL(resource))
  const metadata = {
    resource,
    resource_name: 'Field operations (MCP)',
    authorization_servers: [issuer],
    scopes_supported: [...new Set(Object.values(SCOPES))],
    // MCP authorization: the token goes in the Authorization header, never in the query string.
    bearer_methods_supported: ['header'],
  }
  // Every call asks Fieldgate (introspectAll, nothing cached): a farmer's Disconnect ends the agent's next call.
  const guard = createGuard({ issuer, audience: resource, introspection: { clientId, clientSecret }, introspectAll: true, opaqueCacheMs: 0 })
  const handler = createMcpHandler(fieldOperations, { maxRequestBodySize: MAX_BODY })
  const mcp = toNodeHandler(handler, { maxRequestBodySize: MAX_BODY })
  // MCP transports: validate Origin against DNS rebinding; a request without one (not a browser) passes.
  const checkOrigin = originValidation([new URL(resource).hostname])
  const mcpPath = new URL(resource).pathname

  async function handle(req, res) {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path === new URL(metadataUrl).pathname || path === '/.well-known/oauth-protected-resource') {
      if (req.method !== 'GET') return send(res, 405, { error: 'invalid_request', error_description: 'use GET' }, { allow: 'GET' })
      return send(res, 200, metadata, { 'cache-control': 'public, max-age=300' })
    }
    if (path !== mcpPath) return send(res, 404, { error: 'not_found', error_description: `no route for ${req.method} ${path}` })
    if (!checkOrigin(req, res)) return
    try {
      // The whole request, so a DPoP-bound token is checked against its proof for this method and URL.
      const principal = await guard.authenticateRequest({ headers: req.headers, method: req.method ?? 'GET', url: new URL(req.url ?? '/', resource) })
      req.auth = authInfoOf(req.headers.authorization, principal, resource, metadataUrl)
    } catch (err) {
      return refuse(res, err, metadataUrl)
    }
    await mcp(req, res)
  }
  return { handle, close: () => handler.close() }
}

// The canonical URL (RFC 8707 resource, the tokens' aud) needs the port, known once listening.
let service
const server = createServer((req, res) => {
  if (!service) return send(res, 503, { error: 'temporarily_unavailable', error_description: 'starting' })
  service.handle(req, res).catch((err) => refuse(res, err))
})

server.listen(port, host, () => {
  const origin = `http://${host}:${server.address().port}`
  const resource = process.env.MCP_RESOURCE || `${origin}/mcp`
  service = mcpService(resource)
  console.log(`mcp-server listening on ${origin} (MCP at ${resource}, issuer ${issuer})`)
})

function stop(signal) {
  console.log(`mcp-server: ${signal}, stopping`)
  server.close(() => process.exit(0))
  server.closeAllConnections()
  service?.close().catch(() => {})
  setTimeout(() => process.exit(1), 3000).unref()
}
process.once('SIGINT', () => stop('SIGINT'))
process.once('SIGTERM', () => stop('SIGTERM'))
