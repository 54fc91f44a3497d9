import { InvalidScope } from './errors.js'

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const scopeToken = /^[\x21\x23-\x5B\x5D-\x7E]+$/

/** Parses a space-delimited scope string into unique scope tokens, in order. */
export function parseScope(value: string | undefined): string[] {
  if (value === undefined) return []
  const scopes = value.split(' ').filter((s) => s !== '')
  for (const s of scopes) if (!scopeToken.test(s)) throw new InvalidScope('scope contains an invalid character')
  return [...new Set(scopes)]
}

export const formatScope = (scopes: readonly string[]): string => scopes.join(' ')

export const missingFrom = (wanted: readonly string[], allowed: readonly string[]): string[] => wanted.filter((s) => !allowed.includes(s))

/** The same scopes, whatever their order. */
export const sameScopes = (a: readonly string[], b: readonly string[]): boolean => missingFrom(a, b).length === 0 && missingFrom(b, a).length === 0

/** What each scope lets an app do, in the words a person sees on the consent page (fieldmargin's scope table). */
export const scopeDescriptions: Readonly<Record<string, string>> = {
  api: 'Read and create work orders and other records of your organisation',
  'fields:read:all': 'Access all of the fields and boundaries',
  'maps:write': 'Create farm maps and field maps',
  'vehicles:write': 'Provide location of farm vehicles',
  'sensors:write': 'Provide sensor readings',
  'alerts:write': 'Create alerts for issues on the farm',
}

export const describeScope = (scope: string): string => scopeDescriptions[scope] ?? 'A permission this app is registered for'
