import { Type, type TSchema } from 'typebox'

/*
 * Building blocks of route schemas. Each is TypeBox: plain JSON Schema, which Fastify's ajv validates
 * and @fastify/swagger documents, and the static type of what passed, which the type provider hands
 * the handler (no casts at the edge).
 */

// PostgreSQL text cannot hold NUL: refused at the edge on both engines alike.
const noNul = '^[^\\u0000]*$'

/** A string of at most `maxLength` characters with no NUL. */
export const text = (maxLength = 2000, opts: { minLength?: number } = {}) => Type.String({ maxLength, pattern: noNul, ...opts })
/** One of `values`, typed as their union. */
export const oneOf = <const T extends string[]>(values: [...T]) => Type.Enum(values, { type: 'string' })
export const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
/** An object that refuses properties it does not name. */
export const strict = <P extends Record<string, TSchema>>(properties: P) => Type.Object(properties, { additionalProperties: false })
export const list = <T extends TSchema>(item: T) => Type.Array(item)
/** `?limit=` of a cursor-paged list. */
export const pageQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 25 }),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  access_token: Type.Optional(Type.String()),
})
/** The OAuth-style error body the API answers with. */
export const errorBody = Type.Object({ error: Type.String(), error_description: Type.Optional(Type.String()), needed: Type.Optional(Type.String()) })
