import { authorizationCodeGrant } from './authorization-code.js'
import { clientCredentialsGrant } from './client-credentials.js'
import { refreshTokenGrantType } from './refresh-token.js'
import { grantTypes } from './registry.js'

/** Every grant this server implements. A new grant is a GrantType in its own file, listed here. */
export const standardGrantTypes = grantTypes(authorizationCodeGrant, clientCredentialsGrant, refreshTokenGrantType)
