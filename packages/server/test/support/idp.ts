/**
 * The platform's own identity provider for upstream sign-in tests: oidc-provider (panva, the certified
 * OpenID Provider) on loopback with its development login and consent pages (any login, any password:
 * the login names the account), RS256 keys the test holds too (to sign logout tokens), and accounts
 * whose claims the test sets: email, email_verified and the tenants claim.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose'
import Provider from 'oidc-provider'

export interface IdpAccount {
  email?: string
  email_verified?: boolean
  tenants?: unknown
}

export interface Idp {
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  /** The claims of each account by login; change them between sign-ins. */
  readonly accounts: Map<string, IdpAccount>
  /** A JWT signed with the provider's own key (a logout token, say). */
  sign(payload: JWTPayload, typ?: string): Promise<string>
  close(): Promise<void>
}

export async function startIdp(opts: { redirectUris: string[]; postLogoutRedirectUris: string[]; backchannelLogoutUri?: string }): Promise<Idp> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'idp-rs256' }
  const accounts = new Map<string, IdpAccount>()
  const server: Server = createServer()
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const clientId = 'fieldgate'
  const clientSecret = 'fieldgate-secret-0123456789abcdefghijklmnopqrstuvwxyz'
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: opts.redirectUris,
        post_logout_redirect_uris: opts.postLogoutRedirectUris,
        token_endpoint_auth_method: 'client_secret_post',
        ...(opts.backchannelLogoutUri ? { backchannel_logout_uri: opts.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
      },
    ],
    jwks: { keys: [jwk] },
    pkce: { required: () => true },
    claims: { openid: ['sub', 'tenants'], email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: true }, backchannelLogout: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    findAccount: (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: () => ({ sub: id, ...(accounts.get(id) ?? {}) }),
    }),
  })
  server.on('request', provider.callback())
  return {
    issuer,
    clientId,
    clientSecret,
    accounts,
    sign: (payload, typ = 'logout+jwt') => new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'idp-rs256', typ }).sign(privateKey as CryptoKey),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections()
        server.close(() => ok())
      }),
  }
}
