/**
 * @fieldgate/client: the client SDK for partners and integrations of a Fieldgate authorization server.
 * fetch and Web Crypto only, no dependencies: Node 20+, Deno, Bun, browsers (for the parts without a
 * client secret) and workers.
 *
 * - `FieldgateClient`: client credentials in the FieldEdge, Field Nation or standard dialect, a token
 *   cache with early refresh and one request in flight, retries, and the typed API (`client.api`).
 * - `FieldgateIntegration`: the authorization-code flow (authorize URL with state and PKCE, callback
 *   check, exchange, permissions, revoke) and the API for a connection token.
 * - `verifyWebhookSignature` / `readWebhook`: the Data API signature check.
 * - `verifyInstallRequest` / `readInstallRequest` / `completionUrl`: the marketplace install redirect
 *   check, and the signed link back to `/marketplace/complete`.
 * - `FieldgateError`: every failure, with a stable `code`.
 */
export { FieldgateClient, type FieldgateClientOptions, type TokenOptions } from './client.js'
export {
  FieldgateIntegration,
  type AuthorizationRequest,
  type AuthorizationUrlOptions,
  type CallbackResult,
  type Connection,
  type ExchangeOptions,
  type IntegrationOptions,
} from './authorization-code.js'
export type { ClientCredentials, FieldEdgeCredentials, FieldNationCredentials, StandardCredentials } from './client-credentials.js'
export { TokenCache, defaultRefreshEarlyMs, type CachedToken } from './token-cache.js'
export { FieldgateError, isFieldgateError, type FieldgateErrorCode, type FieldgateErrorDetails } from './errors.js'
export { parseRetryAfter, type RetryOptions } from './backoff.js'
export type { FetchLike, TransportOptions } from './transport.js'
export type { ApiRequest, CallOptions, Query, TokenSource } from './api-caller.js'
export {
  Collection,
  FieldgateApi,
  ListCreate,
  type Alert,
  type ApiRecord,
  type CreatedBy,
  type Customer,
  type FarmMap,
  type Field,
  type FieldMap,
  type Lead,
  type ListOptions,
  type NewAlert,
  type NewCustomer,
  type NewFarmMap,
  type NewField,
  type NewFieldMap,
  type NewLead,
  type NewSensorReading,
  type NewVehicleLocation,
  type NewWorkOrder,
  type Page,
  type Point,
  type SensorReading,
  type VehicleLocation,
  type WorkOrder,
  type WorkOrderStatus,
} from './resources.js'
export { createPkce, pkceChallenge, randomState, type Pkce } from './pkce.js'
export {
  eventIdHeader,
  readWebhook,
  signatureHeader,
  verifyWebhookSignature,
  type ReadWebhookOptions,
  type VerifyWebhookOptions,
  type WebhookEvent,
  type WebhookEventType,
  type WebhookFailure,
  type WebhookVerification,
} from './webhooks.js'
export {
  completionUrl,
  defaultSignedQueryMaxAgeSeconds,
  readInstallRequest,
  signQuery,
  verifyInstallRequest,
  type CompletionOptions,
  type CompletionStatus,
  type InstallRequest,
  type SignedQueryOptions,
  type SignedRequest,
} from './marketplace.js'
