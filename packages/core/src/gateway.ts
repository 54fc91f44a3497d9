/**
 * The APIs a gateway protects with Fieldgate's forward-auth check (nginx `auth_request`, Caddy
 * `forward_auth`, Traefik ForwardAuth, Envoy ext_authz): each API's identifier, the hosts it answers on,
 * and its route rules, method and path pattern to the scope a token needs. The operator writes them in
 * a JSON file (FIELDGATE_GATEWAY_FILE); this module reads it once at start and matches requests.
 *
 * Rules are tried in order and the first that matches decides: its `scope` is required, or `public`
 * lets the request through without a token. A route no rule matches is refused (deny by default), so
 * an endpoint added upstream is closed until the operator opens it.
 */
import { ConfigError, readSettingFile, type Config } from './config.js'

/** One rule: methods (any if empty) and a path pattern; `/orders/:id` and `/orders/*` match one segment, a trailing `/**` any rest. */
export interface GatewayRule {
  readonly methods: readonly string[]
  readonly path: string
  /** The scope a token must hold; undefined for a public route. */
  readonly scope: string | undefined
  readonly public: boolean
  readonly pattern: RegExp
}

/** An API behind a gateway, as RFC 9728 describes a protected resource. */
export interface GatewayApi {
  /** A short name of letters, digits and dashes: the path of its metadata at Fieldgate. */
  readonly id: string
  readonly name: string
  /** RFC 9728 `resource`: the API's URL. */
  readonly resource: string
  /** Hosts (host or host:port, as X-Forwarded-Host gives them) it answers on; the resource's host by default. */
  readonly hosts: readonly string[]
  readonly rules: readonly GatewayRule[]
  readonly scopes: readonly string[]
}

export interface Gateway {
  readonly apis: readonly GatewayApi[]
}

export const noGateway: Gateway = Object.freeze({ apis: [] })

const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

/** The gateway file the config names (relative to the data dir), read and checked once at start. */
export function loadGateway(config: Pick<Config, 'gatewayFile' | 'dataDir'>): Gateway {
  if (config.gatewayFile === undefined) return noGateway
  const { path, text } = readSettingFile('FIELDGATE_GATEWAY_FILE', config.gatewayFile, config.dataDir)
  return parseGateway(text, path)
}

/** Reads the gateway file's JSON text; every problem is a ConfigError naming the API and rule. */
export function parseGateway(text: string, file: string): Gateway {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`FIELDGATE_GATEWAY_FILE ${file} is not JSON: ${err instanceof Error ? err.message : String(err)}`)
  }
  const apis = field(json, 'apis', 'FIELDGATE_GATEWAY_FILE')
  if (!Array.isArray(apis) || apis.length === 0) throw new ConfigError(`FIELDGATE_GATEWAY_FILE ${file}: "apis" must be a list of at least one API`)
  const parsed = apis.map((a, i) => parseApi(a, `FIELDGATE_GATEWAY_FILE api ${i + 1}`))
  const ids = new Set<string>()
  const hosts = new Map<string, string>()
  for (const api of parsed) {
    if (ids.has(api.id)) throw new ConfigError(`FIELDGATE_GATEWAY_FILE: two APIs have the id "${api.id}"`)
    ids.add(api.id)
    for (const h of api.hosts) {
      const other = hosts.get(h)
      if (other) throw new ConfigError(`FIELDGATE_GATEWAY_FILE: the host ${h} is both ${other}'s and ${api.id}'s`)
      hosts.set(h, api.id)
    }
  }
  return Object.freeze({ apis: Object.freeze(parsed) })
}

function parseApi(json: unknown, where: string): GatewayApi {
  const resource = requiredText(json, 'resource', where)
  let url: URL
  try {
    url = new URL(resource)
  } catch {
    throw new ConfigError(`${where}: "resource" must be the API's URL, e.g. https://api.example.com`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${where}: "resource" must be an http(s) URL`)
  if (url.search || url.hash) throw new ConfigError(`${where}: "resource" has no query or fragment (RFC 9728 §1.2)`)
  const id = optionalText(json, 'id', where) ?? url.hostname.replace(/[^a-z0-9]+/gi, '-').toLowerCase()
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id)) throw new ConfigError(`${where}: "id" must be lowercase letters, digits and dashes`)
  const hostList = field(json, 'hosts', where) ?? [url.host]
  if (!Array.isArray(hostList) || hostList.some((h) => typeof h !== 'string' || !/^[a-z0-9.[\]:-]+$/i.test(h))) {
    throw new ConfigError(`${where}: "hosts" must be a list of host or host:port names`)
  }
  const rules = field(json, 'rules', where)
  if (!Array.isArray(rules) || rules.length === 0) throw new ConfigError(`${where}: "rules" must be a list of at least one rule`)
  const parsedRules = rules.map((r, i) => parseRule(r, `${where} rule ${i + 1}`))
  const scopes = [...new Set(parsedRules.flatMap((r) => (r.scope ? [r.scope] : [])))]
  return Object.freeze({
    id,
    name: optionalText(json, 'name', where) ?? url.host,
    resource,
    hosts: Object.freeze(hostList.map((h: string) => h.toLowerCase())),
    rules: Object.freeze(parsedRules),
    scopes: Object.freeze(scopes),
  })
}

function parseRule(json: unknown, where: string): GatewayRule {
  const path = requiredText(json, 'path', where)
  const listed = field(json, 'methods', where) ?? []
  if (!Array.isArray(listed) || listed.some((m) => typeof m !== 'string' || !methods.includes(m.toUpperCase()))) {
    throw new ConfigError(`${where}: "methods" must be a list of ${methods.join(', ')}`)
  }
  const isPublic = field(json, 'public', where) === true
  const scope = optionalText(json, 'scope', where)
  if (isPublic === (scope !== undefined)) throw new ConfigError(`${where}: give either "scope" (the scope a token needs) or "public": true`)
  if (scope !== undefined && !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)) throw new ConfigError(`${where}: "scope" must be one scope token (RFC 6749 §3.3)`)
  return Object.freeze({ methods: Object.freeze(listed.map((m: string) => m.toUpperCase())), path, scope, public: isPublic, pattern: compilePath(path, where) })
}

/** `/orders/:id/*` to a RegExp: a segment per `:name` or `*`, any rest for a trailing `/**`, the rest literal. */
export function compilePath(path: string, where: string): RegExp {
  if (!path.startsWith('/')) throw new ConfigError(`${where}: "path" must start with /`)
  const segments = path.split('/').slice(1)
  const parts = segments.map((s, i) => {
    if (s === '**') {
      if (i !== segments.length - 1) throw new ConfigError(`${where}: ** may only end a path`)
      return '(?:/.*)?'
    }
    if (s === '*' || /^:[A-Za-z_]\w*$/.test(s)) return '/[^/]+'
    if (/[*:]/.test(s)) throw new ConfigError(`${where}: "${s}" mixes a wildcard into a segment`)
    return `/${s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')}`
  })
  return new RegExp(`^${parts.join('')}$`)
}

/** What a gateway asks about: the original request's host, method and path (no query). */
export interface GatewayRequest {
  host: string | undefined
  method: string
  path: string
}

export type RouteDecision = { kind: 'public'; api: GatewayApi } | { kind: 'scope'; api: GatewayApi; scope: string } | { kind: 'no-api' } | { kind: 'no-rule'; api: GatewayApi }

/** The declared API that answers on `host` (host or host:port, any case). */
export function apiForHost(gateway: Gateway, host: string | undefined): GatewayApi | undefined {
  const name = host?.toLowerCase()
  return name === undefined ? undefined : gateway.apis.find((a) => a.hosts.includes(name))
}

/** The API a host is, and what its first matching rule asks of the request. */
export function decideRoute(gateway: Gateway, req: GatewayRequest): RouteDecision {
  const api = apiForHost(gateway, req.host) ?? (gateway.apis.length === 1 && req.host === undefined ? gateway.apis[0] : undefined)
  if (!api) return { kind: 'no-api' }
  const method = req.method.toUpperCase()
  const rule = api.rules.find((r) => (r.methods.length === 0 || r.methods.includes(method) || (method === 'HEAD' && r.methods.includes('GET'))) && r.pattern.test(req.path))
  if (!rule) return { kind: 'no-rule', api }
  return rule.public ? { kind: 'public', api } : { kind: 'scope', api, scope: rule.scope! }
}

const field = (json: unknown, name: string, where: string): unknown => {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`${where} must be a JSON object`)
  return Object.entries(json).find(([k]) => k === name)?.[1]
}

function optionalText(json: unknown, name: string, where: string): string | undefined {
  const value = field(json, name, where)
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.trim() === '') throw new ConfigError(`${where}: "${name}" must be text`)
  return value.trim()
}

function requiredText(json: unknown, name: string, where: string): string {
  const value = optionalText(json, name, where)
  if (value === undefined) throw new ConfigError(`${where}: "${name}" is required`)
  return value
}
