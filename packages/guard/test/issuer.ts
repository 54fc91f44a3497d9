/**
 * A stand-in issuer on loopback for the guard's unit tests: RFC 8414 metadata, a JWKS and an RFC 7662
 * introspection endpoint served by node:http, with keys made and tokens signed by jose. Each answer can
 * be changed per test, and every request is counted by path, so a test can say how often the guard
 * asked.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair, type GenerateKeyPairResult, type JWK, type JWTPayload } from 'jose'

export interface SigningKey {
  kid: string
  alg: 'ES256' | 'RS256' | 'PS256' | 'EdDSA'
  privateKey: GenerateKeyPairResult['privateKey']
  jwk: JWK
}

export async function signingKey(kid: string, alg: SigningKey['alg'] = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } }
}

export interface Introspected {
  /** Decoded form fields and the Authorization header the guard sent. */
  form: Record<string, string>
  authorization: string | undefined
}

export type Reply = { status: number; body: unknown }

export class Issuer {
  /** Requests seen, by path. */
  readonly hits = new Map<string, number>()
  readonly introspections: Introspected[] = []
  /** The keys the JWKS publishes. */
  published: SigningKey[] = []
  /** Overrides for the metadata document; `issuer` defaults to this server's origin. */
  metadata: (origin: string) => Reply = (origin) => ({ status: 200, body: { issuer: origin, jwks_uri: `${origin}/jwks.json`, introspection_endpoint: `${origin}/introspect` } })
  jwks: () => Reply = () => ({ status: 200, body: { keys: this.published.map((k) => k.jwk) } })
  introspect: (form: Record<string, string>) => Reply = () => ({ status: 200, body: { active: false } })

  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(): Promise<Issuer> {
    let self: Issuer | undefined
    const server = createServer(async (req, res) => {
      const issuer = self!
      const path = new URL(req.url!, 'http://x').pathname
      issuer.hits.set(path, (issuer.hits.get(path) ?? 0) + 1)
      let reply: Reply = { status: 404, body: { error: 'not_found' } }
      if (path === '/.well-known/oauth-authorization-server') reply = issuer.metadata(issuer.origin)
      else if (path === '/jwks.json') reply = issuer.jwks()
      else if (path === '/introspect' && req.method === 'POST') {
        const form = Object.fromEntries(new URLSearchParams(await text(req)))
        issuer.introspections.push({ form, authorization: req.headers.authorization })
        reply = issuer.introspect(form)
      }
      const body = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body)
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(body)
    })
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
    self = new Issuer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    return self
  }

  hitsOf(path: string): number {
    return this.hits.get(path) ?? 0
  }

  get audience(): string {
    return `${this.origin}/api`
  }

  /** An RFC 9068 access token as Fieldgate signs one; `claims` and `header` override the defaults (undefined removes). */
  async token(key: SigningKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    const payload: Record<string, unknown> = {
      iss: this.origin,
      aud: this.audience,
      sub: 'client-1',
      client_id: 'client-1',
      scope: 'api sensors:write',
      tenant_id: 'tenant-1',
      grant_id: 'grant-1',
      jti: `jti-${Math.random()}`,
      iat: now,
      exp: now + 600,
      ...claims,
    }
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k]
    const protectedHeader: Record<string, unknown> = { alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header }
    for (const [k, v] of Object.entries(protectedHeader)) if (v === undefined) delete protectedHeader[k]
    return new SignJWT(payload as JWTPayload).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey)
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((ok) => this.server.close(() => ok()))
  }
}

function text(req: IncomingMessage): Promise<string> {
  return new Promise((ok, fail) => {
    let body = ''
    req
      .setEncoding('utf8')
      .on('data', (d: string) => {
        body += d
      })
      .on('end', () => ok(body))
      .on('error', fail)
  })
}
