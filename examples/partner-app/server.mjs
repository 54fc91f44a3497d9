/**
 * An example partner: the other end of Fieldgate's three partner URLs, on this machine, with a page that
 * shows what reached it. Plain node:http; @fieldgate/client only for the signature checks and PKCE.
 *
 *   GET  /           what happened: code exchanges, installs, Data API deliveries (secrets masked)
 *   GET  /connect    starts the fieldmargin flow: /authorize with state and PKCE S256
 *   GET  /callback   the redirect URI: checks state and iss, POST /v1/token.exchange, GET /v1/permissions
 *   GET  /install    the install URL (FieldEdge): checks Fieldgate's hmac, gets a token for target_id,
 *                    sends the person back to /marketplace/complete, signed
 *   POST /data-api   the Data API URL: checks fieldgate-signature, answers 204 (or 401 when it fails)
 *
 * Everything is kept in memory and lost on restart.
 *
 * Run: CLIENT_ID=… CLIENT_SECRET=… node examples/partner-app/server.mjs   (or --app <apps create --json output>)
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { completionUrl, createPkce, eventIdHeader, randomState, readInstallRequest, signatureHeader, verifyWebhookSignature } from '@fieldgate/client'

const { values: args } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' }, app: { type: 'string' } } })

/** `--app file`: the JSON `fieldgate apps create --json` printed, so nothing is copied by hand. */
function appFile(path) {
  if (!path) return {}
  try {
    const app = JSON.parse(readFileSync(path, 'utf8'))
    if (typeof app.client_id !== 'string' || typeof app.client_secret !== 'string') throw new Error('it has no client_id and client_secret')
    return { CLIENT_ID: app.client_id, CLIENT_SECRET: app.client_secret }
  } catch (err) {
    console.error(`partner-app: --app ${path} is not the output of fieldgate apps create --json: ${err.message}`)
    process.exit(2)
  }
}
const env = { ...process.env, ...appFile(args.app) }

const fieldgate = (env.FIELDGATE_URL || 'http://127.0.0.1:4400').replace(/\/+$/, '')
const host = args.host ?? (env.HOST || '127.0.0.1')
const port = Number(args.port ?? (env.PORT || 4500))
const clientId = env.CLIENT_ID || ''
// During a rotation (fieldgate apps rotate-secret) both verify; the new one is used to call Fieldgate.
const secrets = [env.CLIENT_SECRET, env.OLD_CLIENT_SECRET].filter(Boolean)
const clientSecret = secrets[0] ?? ''
const scope = env.SCOPE || ''
/** Our own origin as registered on the app; known once listening when PORT is 0. */
let origin = (env.PUBLIC_URL || '').replace(/\/+$/, '')

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`partner-app: --port / PORT must be a port number, not ${args.port ?? env.PORT}`)
  process.exit(2)
}

// ---- what happened, newest first ----

const KEEP = 50
const exchanges = []
const installs = []
const deliveries = []
const remember = (list, entry) => {
  list.unshift({ at: new Date().toISOString(), ...entry })
  list.length = Math.min(list.length, KEEP)
}
/** state → the authorization this browser started: PKCE verifier, browser, when. */
const pending = new Map()
const PENDING_MS = 10 * 60_000

// ---- masking: enough to recognise a value, never enough to use it ----

function mask(value) {
  if (typeof value !== 'string' || value === '') return value
  const prefix = /^fgs_(sandbox|live)_/.exec(value)?.[0] ?? ''
  if (prefix) return `${prefix}•••• (hidden)`
  if (value.length <= 12) return '••••'
  return `${value.slice(0, 6)}…${value.slice(-4)} (${value.length} characters)`
}

const SECRET_FIELDS = new Set(['client_secret', 'code', 'code_verifier', 'access_token'])
const masked = (obj) => Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, SECRET_FIELDS.has(k) ? mask(v) : v]))
/** A form body as people read it: one field a line, values decoded, secrets masked. */
const maskedForm = (form) => Object.entries(masked(form)).map(([k, v], i) => `${i ? '&' : ''}${k}=${v}`).join('\n')

/** A JWT's claims, unverified: Fieldgate's API verifies it; we only show what it says. */
function jwtClaims(token) {
  const part = typeof token === 'string' ? token.split('.')[1] : undefined
  if (!part) return undefined
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
}

// ---- calling Fieldgate ----

/** One call, recorded as request and response (masked) whatever happens. */
async function call(method, path, { form, json, bearer } = {}) {
  const url = `${fieldgate}${path}`
  const headers = { accept: 'application/json' }
  let body
  let shown
  if (form) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(form).toString()
    shown = maskedForm(form)
  } else if (json) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(json)
    shown = JSON.stringify(masked(json))
  }
  if (bearer) headers.authorization = `Bearer ${bearer}`
  const request = { method, url, ...(bearer ? { authorization: `Bearer ${mask(bearer)}` } : {}), ...(shown ? { contentType: headers['content-type'], body: shown } : {}) }
  try {
    const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(10_000) })
    const text = await res.text()
    let data
    try {
      data = JSON.parse(text)
    } catch {
      data = undefined
    }
    const shownBody = data && typeof data === 'object' ? JSON.stringify(masked(data)) : text.slice(0, 500)
    return { ok: res.ok, status: res.status, data, request, response: { status: res.status, body: shownBody } }
  } catch (err) {
    return { ok: false, status: 0, data: undefined, request, response: { status: 0, body: `Fieldgate did not answer: ${err.message}` } }
  }
}

const oauthError = (r) => (r.data?.error ? `${r.data.error}${r.data.error_description ? `: ${r.data.error_description}` : ''}` : `HTTP ${r.status}`)

// ---- HTTP plumbing ----

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])

function cookies(req) {
  const out = {}
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=')
    if (at > 0) out[part.slice(0, at).trim()] = part.slice(at + 1).trim()
  }
  return out
}

const BROWSER_COOKIE = 'partner_browser'

/** This browser's id, set on first use, so a callback is accepted only in the browser that started it. */
function browserId(req, res) {
  const existing = cookies(req)[BROWSER_COOKIE]
  if (existing && /^[A-Za-z0-9_-]{22}$/.test(existing)) return existing
  const id = randomBytes(16).toString('base64url')
  res.setHeader('set-cookie', `${BROWSER_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`)
  return id
}

const redirect = (res, location) => res.writeHead(303, { location, 'cache-control': 'no-store' }).end()

function page(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; color: #1b1b1b; overflow-wrap: anywhere; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ccc; }
pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
article { border: 1px solid #ccc; border-left: 6px solid #888; padding: .25rem 1rem; margin: 1rem 0; }
article.ok { border-left-color: #1a7f37; } article.failed { border-left-color: #c62828; }
.verdict { font-weight: bold; } .muted { color: #555; } code { background: #f4f4f4; padding: 0 .2rem; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; } dt { font-weight: bold; } dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
a.button { display: inline-block; background: #1a5fb4; color: #fff; padding: .5rem 1rem; border-radius: 4px; text-decoration: none; }
</style></head>
<body>${body}</body></html>`)
}

async function readBody(req, limit) {
  const chunks = []
  let size = 0
  for await (const chunk of req) {
    size += chunk.length
    if (size > limit) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

// ---- fieldmargin: authorization code with state and PKCE ----

const redirectUri = () => `${origin}/callback`

async function connect(req, res) {
  if (!clientId || !clientSecret) return page(res, 409, 'Not configured', notConfigured())
  const state = randomState()
  const pkce = await createPkce()
  for (const [s, p] of pending) if (Date.now() - p.at > PENDING_MS) pending.delete(s)
  pending.set(state, { verifier: pkce.codeVerifier, browser: browserId(req, res), at: Date.now() })
  const url = new URL(`${fieldgate}/authorize`)
  url.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: redirectUri(),
    ...(scope ? { scope } : {}),
    state,
    code_challenge: pkce.codeChallenge,
    code_challenge_method: pkce.codeChallengeMethod,
  }).toString()
  return redirect(res, url.href)
}

async function callback(req, res, url) {
  const q = url.searchParams
  const callbackShown = Object.fromEntries([...q].map(([k, v]) => [k, k === 'code' ? mask(v) : v]))
  const fail = (error, more = {}) => {
    remember(exchanges, { ok: false, error, callback: callbackShown, ...more })
    return redirect(res, '/')
  }
  const state = q.get('state') ?? ''
  const started = pending.get(state)
  // The state must be one we made, for this browser, and is good once (RFC 6749 §10.12).
  if (!started) return fail('state is missing or unknown: this callback was not started here, or was already used')
  pending.delete(state)
  if (started.browser !== cookies(req)[BROWSER_COOKIE]) return fail('state was started in another browser')
  if (Date.now() - started.at > PENDING_MS) return fail('state is older than ten minutes')
  // RFC 9207: the answer must come from the Fieldgate we sent the person to.
  if (q.has('iss') && q.get('iss') !== fieldgate) return fail(`iss is ${q.get('iss')}, not FIELDGATE_URL ${fieldgate}`)
  if (q.has('error')) return fail(`Fieldgate answered ${q.get('error')}${q.has('error_description') ? `: ${q.get('error_description')}` : ''}`)
  const code = q.get('code')
  if (!code) return fail('no code in the callback')

  const exchange = await call('POST', '/v1/token.exchange', {
    form: { code, client_id: clientId, client_secret: clientSecret, redirect_uri: redirectUri(), code_verifier: started.verifier },
  })
  const steps = { exchange: { request: exchange.request, response: exchange.response } }
  if (!exchange.ok || typeof exchange.data?.access_token !== 'string') return fail(`the code exchange failed: ${oauthError(exchange)}`, steps)
  const token = exchange.data.access_token
  const permissions = await call('GET', '/v1/permissions', { bearer: token })
  steps.permissions = { request: permissions.request, response: permissions.response }
  if (!permissions.ok || !Array.isArray(permissions.data?.scopes)) return fail(`the token exchanged, but /v1/permissions failed: ${oauthError(permissions)}`, steps)
  remember(exchanges, { ok: true, callback: callbackShown, ...steps, token: mask(token), farmId: exchange.data.farm_id, scopes: permissions.data.scopes })
  return redirect(res, '/')
}

// ---- FieldEdge: the install URL ----

async function install(req, res, url) {
  const query = Object.fromEntries(url.searchParams)
  if (!clientId || !clientSecret) return page(res, 409, 'Not configured', notConfigured())
  let request
  try {
    // target, target_id, timestamp (at most five minutes old) and hmac under our client secret.
    request = await readInstallRequest(url, secrets)
  } catch (err) {
    remember(installs, { ok: false, verified: false, query, error: err.message })
    return page(res, 400, 'Install refused', `<h1>Install refused</h1><p>${escape(err.message)}. Nothing was set up.</p><p><a href="/">What the partner saw</a></p>`)
  }
  const token = await call('POST', '/oauth/token', { json: { client_id: clientId, client_secret: clientSecret, target_id: request.targetId, grant_type: 'client_credentials' } })
  const entry = { verified: true, query, target: request.target, targetId: request.targetId, tokenCall: { request: token.request, response: token.response } }
  const accessToken = token.data?.access_token
  if (!token.ok || typeof accessToken !== 'string') {
    const error = `the token request for target_id ${request.targetId} failed: ${oauthError(token)}`
    remember(installs, { ok: false, ...entry, error, completion: 'error' })
    return redirect(res, await completionUrl({ issuer: fieldgate, clientId, clientSecret, targetId: request.targetId, status: 'error', errorDescription: error }))
  }
  const claims = jwtClaims(accessToken)
  remember(installs, { ok: true, ...entry, token: mask(accessToken), scopes: claims?.scope ? claims.scope.split(' ') : [], expiresIn: token.data.expires_in, completion: 'success' })
  // Setup done: back to the marketplace with a signed link, which marks the install complete.
  return redirect(res, await completionUrl({ issuer: fieldgate, clientId, clientSecret, targetId: request.targetId, status: 'success' }))
}

// ---- the Data API URL ----

const seenEvents = new Set()

async function dataApi(req, res) {
  const raw = await readBody(req, 1024 * 1024)
  if (raw === undefined) return res.writeHead(413, { 'content-type': 'application/json' }).end('{"error":"too_large"}')
  const signature = req.headers[signatureHeader]
  const eventId = req.headers[eventIdHeader]
  // The bytes as received: a re-serialized body would not match the signature.
  const check = secrets.length ? await verifyWebhookSignature({ body: raw, signature, secret: secrets }) : { valid: false, reason: 'no CLIENT_SECRET to check with' }
  const text = raw.toString('utf8')
  let event
  try {
    event = JSON.parse(text)
  } catch {
    event = undefined
  }
  const idMatches = check.valid && (!eventId || event?.id === eventId)
  const verified = check.valid && idMatches
  const reason = !check.valid ? check.reason : idMatches ? undefined : 'the fieldgate-event-id header does not name the event in the body'
  const again = verified && seenEvents.has(eventId)
  if (verified) seenEvents.add(eventId)
  remember(deliveries, { ok: verified, verified, reason, eventId, signature, type: event?.type, again, body: event ? JSON.stringify(event, null, 2) : text.slice(0, 2000) })
  // 2xx acknowledges; anything else and Fieldgate retries (a forged delivery is never retried, it never came from it).
  if (!verified) return res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_signature', reason }))
  return res.writeHead(204).end()
}

// ---- the page ----

const call2html = (c) =>
  `<p><strong>${escape(c.request.method)} ${escape(c.request.url)}</strong></p>` +
  `<pre>${c.request.authorization ? `authorization: ${escape(c.request.authorization)}\n` : ''}${c.request.body ? `content-type: ${escape(c.request.contentType)}\n\n${escape(c.request.body)}` : ''}</pre>` +
  `<p>→ <strong>${escape(c.response.status || 'no answer')}</strong></p><pre>${escape(c.response.body)}</pre>`

const verdict = (ok, yes, no) => `<p class="verdict">${ok ? `✔ ${yes}` : `✘ ${no}`}</p>`
const when = (e) => `<p class="muted"><time datetime="${escape(e.at)}">${escape(e.at)}</time></p>`

function exchangeHtml(e) {
  return `<article class="${e.ok ? 'ok' : 'failed'}" data-kind="exchange">
${when(e)}${verdict(e.ok, 'Connected: code exchanged for a token', `Not connected: ${escape(e.error)}`)}
${e.ok ? `<dl><dt>Token</dt><dd><code data-field="token">${escape(e.token)}</code></dd><dt>Farm</dt><dd data-field="farm_id">${escape(e.farmId)}</dd><dt>Scopes</dt><dd data-field="scopes">${escape(e.scopes.join(' '))}</dd></dl>` : ''}
<h3>Callback</h3><pre>${escape(JSON.stringify(e.callback, null, 2))}</pre>
${e.exchange ? `<h3>Code exchange</h3>${call2html(e.exchange)}` : ''}
${e.permissions ? `<h3>Permissions</h3>${call2html(e.permissions)}` : ''}
</article>`
}

function installHtml(e) {
  return `<article class="${e.ok ? 'ok' : 'failed'}" data-kind="install">
${when(e)}${verdict(e.ok, 'Installed: signature verified, token issued, sent back with status=success', escape(e.error))}
<dl><dt>Signature</dt><dd data-field="verified">${e.verified ? 'verified' : 'not verified'}</dd>
${e.targetId ? `<dt>target_id</dt><dd data-field="target_id">${escape(e.targetId)}</dd><dt>target</dt><dd>${escape(e.target)}</dd>` : ''}
${e.ok ? `<dt>Token</dt><dd><code data-field="token">${escape(e.token)}</code></dd><dt>Scopes</dt><dd data-field="scopes">${escape(e.scopes.join(' '))}</dd><dt>Expires in</dt><dd>${escape(e.expiresIn)} s</dd>` : ''}
${e.completion ? `<dt>Sent back</dt><dd>status=${escape(e.completion)}</dd>` : ''}</dl>
<h3>Install request</h3><pre>${escape(JSON.stringify(e.query, null, 2))}</pre>
${e.tokenCall ? `<h3>Token request</h3>${call2html(e.tokenCall)}` : ''}
</article>`
}

function deliveryHtml(e) {
  return `<article class="${e.ok ? 'ok' : 'failed'}" data-kind="delivery" data-event="${escape(e.type ?? '')}">
${when(e)}${verdict(e.verified, `Verified: ${escape(e.type ?? 'event')}${e.again ? ' (delivered again)' : ''}`, `Not verified (${escape(e.reason)}): refused with 401`)}
<dl><dt>Verified</dt><dd data-field="verified">${e.verified ? 'yes' : 'no'}</dd><dt>Event</dt><dd data-field="event">${escape(e.type ?? '—')}</dd>
<dt>${eventIdHeader}</dt><dd>${escape(e.eventId ?? '—')}</dd><dt>${signatureHeader}</dt><dd>${escape(e.signature ?? '—')}</dd></dl>
<pre data-field="body">${escape(e.body)}</pre>
</article>`
}

function notConfigured() {
  return `<h1>Not configured</h1><p>Start the example with the app's credentials, as <code>fieldgate apps create --json</code> printed them:</p>
<pre>CLIENT_ID=&lt;client_id&gt; CLIENT_SECRET=&lt;client_secret&gt; node examples/partner-app/server.mjs</pre><p><a href="/">Back</a></p>`
}

function home(res) {
  const list = (entries, render, none) => (entries.length ? entries.map(render).join('\n') : `<p class="muted">${none}</p>`)
  const config = clientId
    ? `<p>Fieldgate <code>${escape(fieldgate)}</code>, app <code data-field="client_id">${escape(clientId)}</code>, secret <code>${escape(mask(clientSecret))}</code>${secrets.length > 1 ? ' (and the old one, for a rotation)' : ''}.</p>`
    : `<p class="verdict">✘ CLIENT_ID and CLIENT_SECRET are not set: start it with the app's credentials (see its README).</p>`
  page(
    res,
    200,
    'Example partner',
    `<h1>Example partner</h1>
${config}
<p>Register these on the app (<code>fieldgate apps create</code> or the developer portal):</p>
<dl><dt>Install URL</dt><dd><code>${escape(origin)}/install</code></dd><dt>Redirect URI</dt><dd><code>${escape(redirectUri())}</code></dd><dt>Data API URL</dt><dd><code>${escape(origin)}/data-api</code></dd></dl>
<p><a class="button" href="/connect">Connect a farm</a> <span class="muted">sends you to Fieldgate's consent page (state and PKCE S256), and back to the redirect URI.</span></p>
<p><a href="/">Reload</a> to see what arrived since.</p>
<h2 id="exchanges">Code exchanges (fieldmargin)</h2>
${list(exchanges, exchangeHtml, 'None yet: use Connect a farm.')}
<h2 id="installs">Installs (FieldEdge)</h2>
${list(installs, installHtml, 'None yet: install the app from the marketplace at ' + escape(fieldgate) + '/marketplace.')}
<h2 id="deliveries">Data API deliveries</h2>
${list(deliveries, deliveryHtml, 'None yet. Fieldgate sends them to loopback only when started with FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS=1.')}`,
  )
}

// ---- routes ----

async function handle(req, res) {
  const url = new URL(req.url ?? '/', origin || 'http://127.0.0.1')
  const route = `${req.method} ${url.pathname}`
  if (route === 'GET /') return home(res)
  if (route === 'GET /connect') return connect(req, res)
  if (route === 'GET /callback') return callback(req, res, url)
  if (route === 'GET /install') return install(req, res, url)
  if (route === 'POST /data-api') return dataApi(req, res)
  return page(res, 404, 'Not found', `<h1>Not found</h1><p>No page for ${escape(req.method)} ${escape(url.pathname)}.</p><p><a href="/">Home</a></p>`)
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(err)
    if (!res.headersSent) page(res, 500, 'Error', `<h1>Something went wrong</h1><pre>${escape(err.message)}</pre>`)
  })
})

server.listen(port, host, () => {
  if (!origin) origin = `http://${host.includes(':') ? `[${host}]` : host}:${server.address().port}`
  console.log(`partner-app listening on ${origin} (Fieldgate ${fieldgate}${clientId ? `, app ${clientId}` : ', no CLIENT_ID set'})`)
})

function stop(signal) {
  console.log(`partner-app: ${signal}, stopping`)
  server.close(() => process.exit(0))
  server.closeAllConnections()
  setTimeout(() => process.exit(1), 3000).unref()
}
process.once('SIGINT', () => stop('SIGINT'))
process.once('SIGTERM', () => stop('SIGTERM'))
