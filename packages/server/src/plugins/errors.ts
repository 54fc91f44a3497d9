import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { OAuthError, OperationError, ServerError, TemporarilyUnavailable, operationStatus, type OperationErrorCode } from '@fieldgate/core'
import { isStoreUnavailable } from '@fieldgate/storage'

/** An operation's code as the JSON error body names it: `invalid` is OAuth's invalid_request. */
const operationErrorName: Readonly<Record<OperationErrorCode, string>> = { invalid: 'invalid_request', not_found: 'not_found', conflict: 'conflict', forbidden: 'forbidden' }

/**
 * The one place errors become responses. OAuth errors keep their code, status and challenge headers;
 * an operation's refusal keeps its code (404 not_found, 409 conflict, 400 invalid_request, 403 forbidden);
 * framework errors (bad JSON, oversized or unsupported bodies, schema failures) become invalid_request;
 * a store that cannot be reached is 503 temporarily_unavailable with Retry-After (never a 4xx that
 * blames the client); anything else unexpected is logged and answered as server_error without internals.
 */
export function registerErrorHandling(app: FastifyInstance, ownMetadataUrl: string): void {
  app.setErrorHandler((err: FastifyError | OAuthError, request, reply) => {
    // Every challenge of Fieldgate's own API names its RFC 9728 metadata.
    if (err instanceof OAuthError) return sendOAuthError(reply, err, challengeWithMetadata(err, ownMetadataUrl))
    if (err instanceof OperationError) return reply.code(operationStatus[err.code]).send({ error: operationErrorName[err.code], error_description: err.message })
    const status = (err as FastifyError).statusCode ?? 500
    if ((err as FastifyError).validation) {
      return reply.code(400).send({ error: 'invalid_request', error_description: `request ${err.message}` })
    }
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: 'invalid_request', error_description: describeClientError(err as FastifyError) })
    }
    if (isStoreUnavailable(err)) {
      request.log.warn({ err }, 'the store is unavailable')
      return sendOAuthError(reply, new TemporarilyUnavailable())
    }
    request.log.error({ err }, 'unexpected error')
    return sendOAuthError(reply, new ServerError())
  })
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'not_found', error_description: `no route for ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` })
  })
}

/** An OAuth error as its response; `headers` stand in for the error's own (a challenge with metadata added), `status` for its status. */
export function sendOAuthError(reply: FastifyReply, err: OAuthError, headers: Record<string, string> = err.headers, status = err.status): FastifyReply {
  return reply
    .code(status)
    .headers({ ...headers, 'cache-control': 'no-store' })
    .send(err.toJSON())
}

/** RFC 9728 §3.1: where a resource's metadata is, its path after /.well-known/oauth-protected-resource. */
export function metadataUrlOf(resource: string): string {
  const url = new URL(resource)
  return `${url.origin}/.well-known/oauth-protected-resource${url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')}`
}

/**
 * The error's headers with RFC 9728 §5.1's `resource_metadata` in its Bearer challenge (before the
 * DPoP one, RFC 9449 §7.1), if it is a protected resource's refusal.
 */
export function challengeWithMetadata(err: OAuthError, metadataUrl: string): Record<string, string> {
  if (!err.challenges) return err.headers
  const { bearer, dpop } = err.challenges
  return { ...err.headers, 'www-authenticate': `${bearer}, resource_metadata="${metadataUrl}", ${dpop}` }
}

function describeClientError(err: FastifyError): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'the request body is too large'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'send application/x-www-form-urlencoded or application/json'
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'the body is not valid JSON'
    default:
      return 'the request is malformed'
  }
}
