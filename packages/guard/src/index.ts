/**
 * @fieldgate/guard: check Fieldgate access tokens in any Node.js service. JWTs are verified locally
 * against the issuer's published keys; opaque tokens are introspected, with a short positive cache.
 */
export { createGuard, requireScope, type FetchLike, type Guard, type GuardOptions, type Principal } from './guard.js'
export { bearerToken, type HeaderSource } from './bearer.js'
export { GuardError, GuardUpstreamError, type GuardErrorCode } from './errors.js'
