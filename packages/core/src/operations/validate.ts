import type { AppField } from '../operation-error.js'
import { invalid } from '../operation-error.js'
import { introspectAllScope } from '../endpoints/introspect.js'
import { parseScope, scopeDescriptions } from '../scopes.js'

/* The input rules operations share; each throws OperationError `invalid`, naming the field when it can. */

export function oneOf<T extends string>(value: string, allowed: readonly T[], name: string): T {
  const found = allowed.find((a) => a === value)
  if (found === undefined) throw invalid(`${name} must be one of: ${allowed.join(', ')}`)
  return found
}

export function requireText(value: string | undefined, name: string, field?: AppField): string {
  const text = value?.trim()
  if (!text || text.length > 200) throw invalid(`${name} is required (at most 200 characters)`, field)
  return text
}

/** The scopes an app may register: the catalogue the consent page describes, and the resource servers' one. */
export const knownScopes = (): string[] => [...Object.keys(scopeDescriptions), introspectAllScope]

/** Space-separated scope names from the catalogue: a typo would otherwise become a scope no API checks. */
export function safeScopes(value: string): string[] {
  let scopes: string[]
  try {
    scopes = parseScope(value)
  } catch {
    throw invalid('scopes must be space-separated scope names', 'scopes')
  }
  const known = knownScopes()
  const unknown = scopes.filter((s) => !known.includes(s))
  if (unknown.length > 0) throw invalid(`unknown scope ${unknown.join(', ')}: the scopes are ${known.join(', ')}`, 'scopes')
  return scopes
}

/** An account's address: trimmed, lower-cased, one @, at most 320 characters (RFC 5321 §4.5.3.1). */
export function accountEmail(value: string | undefined): string {
  const email = (value ?? '').trim().toLowerCase()
  if (!/^[^@\s]+@[^@\s]+$/.test(email) || email.length > 320) throw invalid('email is not an email address (like name@example.com)', 'email')
  return email
}

/** A new password: at least 10 characters (NIST SP 800-63B §5.1.1.2: length, no composition rules), at most 200. */
export function newPassword(value: string | undefined): string {
  const password = value ?? ''
  if (password.length < 10) throw invalid('password must be at least 10 characters', 'password')
  if (password.length > 200) throw invalid('password must be at most 200 characters', 'password')
  return password
}

export function optionalEmail(value: string | undefined): string | null {
  if (value === undefined || value.trim() === '') return null
  if (!/^[^@\s]+@[^@\s]+$/.test(value.trim()) || value.length > 320) throw invalid('contact email is not an email address', 'contact_email')
  return value.trim()
}

export function optionalUrl(value: string | undefined, name: string, field: AppField): string | null {
  if (value === undefined || value === '') return null
  if (!isHttpUrl(value)) throw invalid(`${name} must be an http(s) URL`, field)
  return value
}

/**
 * RFC 9700 §4.1: redirect URIs are compared exactly, so they must be absolute and carry no fragment;
 * a code sent over plain http can be read on the way, so http only to loopback (RFC 8252 §7.3, RFC 9700 §2.1).
 */
export function requireRedirectUri(value: string, publicClient = false): string {
  if (publicClient && isPrivateUseUri(value)) return value
  if (!isHttpUrl(value) || value.includes('#')) throw invalid(`redirect URI ${value} must be an absolute http(s) URL without a fragment`, 'redirect_uris')
  if (!isSecureUrl(value)) throw invalid(`redirect URI ${value} must use https (http only for 127.0.0.1, [::1] or localhost)`, 'redirect_uris')
  return value
}

/**
 * RFC 8252 §7.1: a native app's private-use scheme is a reverse domain name it controls
 * (`com.example.fieldapp:/callback`), so it names a dot; never a scheme browsers act on themselves.
 */
export function isPrivateUseUri(value: string): boolean {
  const scheme = /^([a-z][a-z0-9+.-]*):[^#\s]+$/i.exec(value)?.[1]?.toLowerCase()
  return scheme?.includes('.') === true && URL.canParse(value)
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== ''
  } catch {
    return false
  }
}

/** https, or http to a loopback host: 127.0.0.0/8, [::1], localhost (RFC 8252 §7.3, RFC 6761 §6.3). */
export function isSecureUrl(value: string): boolean {
  const url = new URL(value)
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase()
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** An https URL of at most 2000 characters, or null when blank: links and images customers' browsers load. */
export function optionalHttpsUrl(value: string | null | undefined, name: string, field: AppField): string | null {
  const url = value?.trim() ?? ''
  if (url === '') return null
  if (url.length > 2000 || !isHttpUrl(url) || new URL(url).protocol !== 'https:') throw invalid(`${name} must be an https URL (like https://example.com/…)`, field)
  return url
}

/** One line of text (no line breaks or control characters), trimmed, at most `max` characters; blank is ''. */
export function oneLine(value: string | undefined, name: string, field: AppField, max: number): string {
  const text = (value ?? '').trim()
  if ([...text].some((c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127)) throw invalid(`${name} must be one line`, field)
  if (text.length > max) throw invalid(`${name} is at most ${max} characters`, field)
  return text
}

/** Up to `max` names from `allowed`, each once, in the order of `allowed`. */
export function someOf<T extends string>(values: readonly string[], allowed: readonly T[], name: string, field: AppField, max: number): T[] {
  const unknown = values.filter((v) => !allowed.some((a) => a === v))
  if (unknown.length) throw invalid(`${name} must be among: ${allowed.join(', ')} (not ${unknown.join(', ')})`, field)
  const chosen = allowed.filter((a) => values.includes(a))
  if (chosen.length > max) throw invalid(`choose at most ${max} ${name}`, field)
  return chosen
}
