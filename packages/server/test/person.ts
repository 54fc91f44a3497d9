import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cliActor, createApp, createTenant, createUser, type App, type AppFields, type Tenant } from '@fieldgate/core'
import { request, type Res, type TestServer } from './helpers.js'

/**
 * A person's browser without the browser: follows nothing by itself, keeps cookies, reads the CSRF
 * token out of each form. The real-browser journey is in authorize-browser.test.ts.
 */
export class Person {
  static readonly password = 'correct horse battery staple'

  private readonly cookies = new Map<string, string>()
  /** Headers every request carries: X-Forwarded-For, for a person at another address behind a trusted proxy. */
  readonly headers: Record<string, string> = {}
  constructor(
    private readonly server: Pick<TestServer, 'url'>,
    readonly email: string,
  ) {}

  cookie(name: string): string | undefined {
    return this.cookies.get(name)
  }

  async get(path: string): Promise<Res> {
    return this.keep(await request(this.server.url(path), { redirect: 'manual', headers: { ...this.headers, cookie: this.cookieHeader() } }))
  }

  async post(path: string, form: Record<string, string>): Promise<Res> {
    return this.keep(
      await request(this.server.url(path), {
        method: 'POST',
        redirect: 'manual',
        body: new URLSearchParams(form).toString(),
        headers: { ...this.headers, 'content-type': 'application/x-www-form-urlencoded', cookie: this.cookieHeader() },
      }),
    )
  }

  async signIn(password = Person.password): Promise<Res> {
    const page = await this.get('/login')
    return this.post('/login', { csrf: csrfOf(page), email: this.email, password, return_to: '/connected-apps' })
  }

  /** GET the authorization URL and answer the consent form; returns the redirect it ends in. */
  async decide(query: Record<string, string>, decision: 'allow' | 'deny', tenantId?: string): Promise<URL> {
    const consent = await this.get(`/oauth/authorize?${new URLSearchParams(query)}`)
    assert.equal(consent.status, 200, consent.text)
    const res = await this.post('/consent', { ...hiddenFields(consent.text), decision, ...(tenantId ? { tenant_id: tenantId } : {}) })
    assert.equal(res.status, 303, res.text)
    return new URL(res.headers.get('location')!)
  }

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private keep(res: Res): Res {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const [name, value] = pair!.split('=') as [string, string]
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return res
  }
}

export const csrfOf = (res: Res): string => /name="csrf" value="([^"]+)"/.exec(res.text)?.[1] ?? assert.fail(`no csrf field in ${res.status} ${res.text.slice(0, 300)}`)

const decodeEntities = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')

export function hiddenFields(page: string): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const m of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]!] = decodeEntities(m[2]!)
  return fields
}

/** A live farm, its owner signed in, and an OAuth 2.1 public client (unless `fields` says otherwise) the operator made. */
export async function agentFarm(
  server: TestServer,
  fields: AppFields & { publicClient?: boolean; redirectUris?: string[] },
): Promise<{ tenant: Tenant; person: Person; app: App }> {
  const ctx = server.runtime.ctx
  const tenant = await createTenant(ctx, cliActor, { name: `Farm ${randomBytes(3).toString('hex')}`, environment: 'live' })
  const email = `owner-${randomBytes(4).toString('hex')}@farm.example`
  await createUser(ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
  const { app } = await createApp(ctx, cliActor, { name: 'Field Agent', kind: 'public', environment: 'live', scopes: 'api', publicClient: true, ...fields })
  const person = new Person(server, email)
  assert.equal((await person.signIn()).status, 303)
  return { tenant, person, app }
}
