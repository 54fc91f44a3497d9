/*
 * Every operation people run, one home each: `(ctx, actor, input)`, checking who may act (access.ts),
 * validating, committing with its audit entry and events, and updating this process's cache. The CLI,
 * the admin API and the portal call these and nothing below them.
 */
export * from './access.js'
export * from './accounts.js'
export * from './apps.js'
export * from './grants.js'
export * from './installs.js'
export * from './keys.js'
export * from './members.js'
export * from './registration.js'
export * from './review.js'
export * from './tenants.js'
export { isSecureUrl, knownScopes } from './validate.js'
export * from './upstream.js'
