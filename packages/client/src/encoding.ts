/**
 * Bytes, base64url, hex and hashes on Web Crypto (`globalThis.crypto`) only: the same code runs in
 * Node 20+, Deno, Bun, browsers and workers, with no node:crypto and no dependency.
 */
import { FieldgateError } from './errors.js'

const encoder = new TextEncoder()

export const utf8 = (text: string): Uint8Array<ArrayBuffer> => encoder.encode(text)

export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** RFC 4648 §5 without padding, as PKCE (RFC 7636 §4.2) wants. btoa exists in every runtime with fetch. */
export function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const b of bytes) binary += String.fromCharCode(b)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export function hex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

/** Web Crypto, or a clear error on a runtime without it (instead of a TypeError deep inside a call). */
export function webCrypto(): Crypto {
  const c = (globalThis as { crypto?: Crypto }).crypto
  if (!c || typeof c.getRandomValues !== 'function' || !c.subtle) {
    throw new FieldgateError('unsupported_runtime', 'this runtime has no Web Crypto (globalThis.crypto with subtle); Node 20+, Deno, Bun and browsers have it')
  }
  return c
}

export const randomBytes = (length: number): Uint8Array<ArrayBuffer> => webCrypto().getRandomValues(new Uint8Array(length))

export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await webCrypto().subtle.digest('SHA-256', data))
}

/** HMAC-SHA256 with a text key taken as UTF-8, as node's createHmac('sha256', secret) does with a string. */
export async function hmacSha256(key: string, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const subtle = webCrypto().subtle
  const cryptoKey = await subtle.importKey('raw', utf8(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  return new Uint8Array(await subtle.sign('HMAC', cryptoKey, data))
}

/**
 * Compares two strings in time that depends only on their length, never on where they first differ,
 * so a signature cannot be guessed one character at a time. A length mismatch returns at once: the
 * length of a hex HMAC is public anyway.
 */
export function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}
