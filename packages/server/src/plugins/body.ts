import type { FastifyInstance } from 'fastify'
import { InvalidRequest, echo, type Params } from '@fieldgate/core'

/**
 * Request bodies: JSON (FieldEdge, Field Nation) and form-urlencoded (RFC 6749). RFC 6749 §3.2 forbids
 * repeated parameters, so a repeated form field or JSON key is rejected rather than silently resolved.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseStrictJson(body as string))
    } catch (err) {
      done(err as Error, undefined)
    }
  })
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseForm(body as string))
    } catch (err) {
      done(err as Error, undefined)
    }
  })
}

export function parseForm(body: string): Record<string, string> {
  const seen = new Map<string, string>()
  for (const [key, value] of new URLSearchParams(body)) {
    if (seen.has(key)) throw new InvalidRequest(`parameter ${echo(key)} is repeated`)
    seen.set(key, value)
  }
  return Object.fromEntries(seen)
}

export function parseStrictJson(text: string): unknown {
  if (text.trim() === '') return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new InvalidRequest('the body is not valid JSON')
  }
  const repeated = firstRepeatedKey(text)
  if (repeated !== undefined) throw new InvalidRequest(`parameter ${echo(repeated)} is repeated`)
  return value
}

/** Scans JSON already known to be valid: after `{` or a `,` inside an object, the next string is a key. */
function firstRepeatedKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = []
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '"') {
      let j = i + 1
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      const keys = stack[stack.length - 1]
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string
        if (keys.has(key)) return key
        keys.add(key)
        expectKey = false
      }
      i = j
    } else if (c === '{') {
      stack.push(new Set())
      expectKey = true
    } else if (c === '[') {
      stack.push(null)
      expectKey = false
    } else if (c === '}' || c === ']') {
      stack.pop()
      expectKey = false
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] != null
    }
  }
  return undefined
}

/** OAuth parameters: a flat object of single strings. Anything else is invalid_request, never a 500. */
export function readParams(source: unknown): Params {
  if (source === undefined || source === null) return {}
  if (typeof source !== 'object' || Array.isArray(source)) throw new InvalidRequest('parameters must be an object of strings')
  const params: [string, string][] = []
  for (const [key, value] of Object.entries(source)) {
    if (Array.isArray(value)) throw new InvalidRequest(`parameter ${echo(key)} is repeated`)
    if (typeof value !== 'string') throw new InvalidRequest(`parameter ${echo(key)} must be a string`)
    // No OAuth parameter contains NUL, and PostgreSQL text cannot hold it.
    if (value.includes('\u0000')) throw new InvalidRequest(`parameter ${echo(key)} contains a NUL character`)
    params.push([key, value])
  }
  return Object.fromEntries(params)
}

/** The query string with repeated parameters refused (RFC 6749 §3.1), as single strings. */
export function queryOf(request: { url: string }): Params {
  const at = request.url.indexOf('?')
  return at === -1 ? {} : readParams(parseForm(request.url.slice(at + 1)))
}
