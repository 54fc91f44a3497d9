/**
 * @fieldgate/guard: check Fieldgate access tokens in any Node.js service. JWTs are verified locally
 * against the issuer's published keys; opaque tokens are introspected, with a short positive cache;
 * DPoP-bound tokens (RFC 9449) must come with a proof by their key.
 */
export { createGuard, requireScope, type FetchLike, type Guard, type GuardOptions, type Principal, type ProtectedRequest } from './guard.js'
export { bearerToken, presentedToken, type HeaderSource } from './bearer.js'
export type { DpopOptions, ReplayCheck } from './dpop.js'
export { GuardError, GuardUpstreamError, dpopAlgorithms, type GuardErrorCode, type TokenScheme } from './errors.js'
