import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import {
  InvalidClientMetadata,
  InvalidRequest,
  deleteRegistration,
  formatScope,
  readRegistration,
  registerClient,
  updateRegistration,
  visitorActor,
  type App,
  type CoreContext,
} from '@fieldgate/core'
import { registrationLimits } from '../plugins/rate-limit.js'
import { text } from '../schemas/common.js'
import { noStore } from './oauth.js'

/**
 * RFC 7591 §2 client metadata. Unknown fields are ignored (§2: "MUST ignore any client metadata it does
 * not understand"), so the object is open; the fields read are typed, and a wrong type is
 * invalid_client_metadata (§3.2.2), not Fastify's invalid_request. `tos_uri`, `software_id` and
 * `software_version` are read only to be ignored (docs/registration.md).
 */
const metadataBody = Type.Object(
  {
    redirect_uris: Type.Optional(Type.Array(text(2000), { maxItems: 10 })),
    token_endpoint_auth_method: Type.Optional(text(100)),
    grant_types: Type.Optional(Type.Array(text(100), { maxItems: 10 })),
    response_types: Type.Optional(Type.Array(text(100), { maxItems: 10 })),
    client_name: Type.Optional(text(200)),
    client_uri: Type.Optional(text(2000)),
    logo_uri: Type.Optional(text(2000)),
    scope: Type.Optional(text(1000)),
    contacts: Type.Optional(Type.Array(text(320), { maxItems: 10 })),
    tos_uri: Type.Optional(text(2000)),
    policy_uri: Type.Optional(text(2000)),
    software_id: Type.Optional(text(200)),
    software_version: Type.Optional(text(200)),
    // RFC 7592 §2.2: an update names its client, and may repeat its secret.
    client_id: Type.Optional(text(256)),
    client_secret: Type.Optional(text(256)),
  },
  { additionalProperties: true },
)
type MetadataBody = Static<typeof metadataBody>

const clientParams = Type.Object({ client_id: text(256) })

/**
 * RFC 7591 registration at /oauth/register (absent under FIELDGATE_REGISTRATION=off) and RFC 7592
 * management at /oauth/register/:client_id with the registration access token, which stay for clients
 * registered before registration was turned off. Limited per client address, before the body is read.
 */
export async function registrationRoutes(fastify: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const onRequest = registrationLimits(fastify)
  const { issuer } = ctx.config

  if (ctx.config.registration.policy !== 'off') {
    app.post('/oauth/register', { onRequest, attachValidation: true, schema: { body: metadataBody } }, async (request, reply) => {
      const metadata = checkedBody(request, request.body)
      const registered = await registerClient(ctx, visitorActor(request.ip), { metadata, initialAccessToken: bearerOf(request) })
      const body = clientInformation(issuer, registered.app, {
        registrationAccessToken: registered.registrationAccessToken,
        clientSecret: registered.clientSecret,
        authMethod: metadata.token_endpoint_auth_method,
      })
      return reply.code(201).headers(noStore).send(body)
    })
  }

  const managed = { onRequest, attachValidation: true, schema: { params: clientParams } }
  app.get('/oauth/register/:client_id', managed, async (request, reply) => {
    const token = bearerOf(request)
    const registered = await readRegistration(ctx, { clientId: request.params.client_id, registrationAccessToken: token })
    return reply.headers(noStore).send(clientInformation(issuer, registered, { registrationAccessToken: token! }))
  })

  app.put('/oauth/register/:client_id', { ...managed, schema: { params: clientParams, body: metadataBody } }, async (request, reply) => {
    const token = bearerOf(request)
    // RFC 7592 §2.2: the token is checked before the body is judged, so nothing is said to a stranger.
    await readRegistration(ctx, { clientId: request.params.client_id, registrationAccessToken: token })
    const metadata = checkedBody(request, request.body)
    const updated = await updateRegistration(ctx, visitorActor(request.ip), { clientId: request.params.client_id, registrationAccessToken: token, metadata })
    return reply.headers(noStore).send(clientInformation(issuer, updated, { registrationAccessToken: token!, authMethod: metadata.token_endpoint_auth_method }))
  })

  app.delete('/oauth/register/:client_id', managed, async (request, reply) => {
    await deleteRegistration(ctx, visitorActor(request.ip), { clientId: request.params.client_id, registrationAccessToken: bearerOf(request) })
    return reply.code(204).headers(noStore).send()
  })
}

/** RFC 7591 §3.1: a JSON object; a field of the wrong type is §3.2.2 invalid_client_metadata. */
function checkedBody(request: FastifyRequest, body: MetadataBody): MetadataBody {
  if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) throw new InvalidRequest('send the client metadata as application/json (RFC 7591 §3.1)')
  if (request.validationError) throw new InvalidClientMetadata(`client metadata ${request.validationError.message}`)
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidClientMetadata('the client metadata must be a JSON object')
  return body
}

/** RFC 6750 §2.1: the initial or registration access token, in the Authorization header only. */
function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  return header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() || undefined : undefined
}

/**
 * RFC 7591 §3.2.1 and RFC 7592 §3: the client as registered, with the registration access token the
 * request carried (or registration made). A client secret is in it only when it was just made: it is
 * stored hashed, so a read cannot give it back. Both authentication methods with a secret work for every
 * confidential client; the one asked for is echoed, `client_secret_basic` otherwise.
 */
function clientInformation(issuer: string, app: App, given: { registrationAccessToken: string; clientSecret?: string | null; authMethod?: string | undefined }) {
  const method = app.publicClient ? 'none' : given.authMethod === 'client_secret_post' ? 'client_secret_post' : 'client_secret_basic'
  return {
    client_id: app.clientId,
    client_id_issued_at: Math.floor(app.createdAt / 1000),
    ...(app.publicClient ? {} : { ...(given.clientSecret ? { client_secret: given.clientSecret } : {}), client_secret_expires_at: 0 }),
    registration_access_token: given.registrationAccessToken,
    registration_client_uri: `${issuer}/oauth/register/${encodeURIComponent(app.clientId)}`,
    client_name: app.name,
    redirect_uris: app.redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: method,
    scope: formatScope(app.scopes),
    ...(app.supportUrl ? { client_uri: app.supportUrl } : {}),
    ...(app.logoUrl ? { logo_uri: app.logoUrl } : {}),
    ...(app.privacyPolicyUrl ? { policy_uri: app.privacyPolicyUrl } : {}),
    ...(app.contactEmail ? { contacts: [app.contactEmail] } : {}),
  }
}
