// A farm owner's consent through the pages, for the benchmarks that need an opaque connection token
// (run.mjs, forward-auth.mjs) or refresh-token chains (oauth21.mjs): a cookie jar over fetch, the hidden
// fields of a form, the flow itself.
import { fieldgateCli } from './children.mjs'

/** A cookie jar over fetch, for the sign-in and consent pages. */
export function browserSession(url) {
  const jar = new Map()
  const send = async (p, init = {}) => {
    const res = await fetch(url + p, {
      ...init,
      redirect: 'manual',
      headers: { ...init.headers, cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
      signal: AbortSignal.timeout(10_000),
    })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const i = pair.indexOf('=')
      jar.set(pair.slice(0, i), pair.slice(i + 1))
    }
    return { res, text: await res.text() }
  }
  const form = (p, fields) => send(p, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() })
  return { send, form }
}

export const hidden = (html) =>
  Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2].replace(/&amp;/g, '&').replace(/&quot;/g, '"')]))

/** A farm owner connects a public app through the consent page; returns the opaque connection token. */
export async function connectThroughConsent(fg) {
  const email = 'owner@bench.example'
  const password = 'bench password 0123'
  await fieldgateCli(fg.env, 'users', 'create', '--email', email, '--password', password, '--tenant', fg.tenant.id, '--role', 'owner')
  const app = await fieldgateCli(
    fg.env,
    'apps',
    'create',
    '--name',
    'bench integration',
    '--kind',
    'public',
    '--environment',
    'sandbox',
    '--tenant',
    fg.tenant.id,
    '--scopes',
    'alerts:write',
    '--redirect-uri',
    'https://bench.example/cb',
  )
  const b = browserSession(fg.url)
  const login = await b.send('/login')
  await b.form('/login', { ...hidden(login.text), email, password })
  const consent = await b.send(`/authorize?client_id=${app.client_id}&scope=alerts:write&state=bench`)
  const decided = await b.form('/consent', { ...hidden(consent.text), decision: 'allow' })
  const code = new URL(decided.res.headers.get('location')).searchParams.get('code')
  if (!code) throw new Error(`the consent flow gave no code: ${decided.res.status} ${decided.text.slice(0, 200)}`)
  const res = await fetch(`${fg.url}/v1/token.exchange`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ code, client_id: app.client_id, client_secret: app.client_secret }),
  })
  const token = (await res.json()).access_token
  if (!/^[0-9a-f]{64}$/.test(token ?? '')) throw new Error(`token.exchange gave no opaque token (${res.status})`)
  return token
}
