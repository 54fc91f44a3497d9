/**
 * PKCE (RFC 7636) with S256 only, and `state`: both from Web Crypto randomness. Fieldgate refuses
 * `plain`, and RFC 9700 §2.1.1 recommends PKCE even for confidential clients, as it stops a stolen
 * code from being redeemed by anyone else.
 */
import { base64url, randomBytes, sha256, utf8 } from './encoding.js'

export interface Pkce {
  /** Keep it with the session until the callback; it is sent only at the code exchange. */
  codeVerifier: string
  codeChallenge: string
  codeChallengeMethod: 'S256'
}

/** 32 random bytes → a 43-character verifier, the shortest RFC 7636 §4.1 allows, with 256 bits in it. */
export async function createPkce(): Promise<Pkce> {
  const codeVerifier = base64url(randomBytes(32))
  return { codeVerifier, codeChallenge: await pkceChallenge(codeVerifier), codeChallengeMethod: 'S256' }
}

/** BASE64URL(SHA256(ASCII(verifier))), RFC 7636 §4.2. */
export async function pkceChallenge(codeVerifier: string): Promise<string> {
  return base64url(await sha256(utf8(codeVerifier)))
}

/** An unguessable `state` (128 bits), to tie the callback to the browser session that started it. */
export const randomState = (): string => base64url(randomBytes(16))
