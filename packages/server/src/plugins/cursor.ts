import { InvalidRequest } from '@fieldgate/core'

/** An opaque page cursor over (created_at, id), the order every list of the API is newest-first in. */
export const cursorOf = (r: { createdAt: number; id: string }): string => Buffer.from(`${r.createdAt}.${r.id}`).toString('base64url')

export function parseCursor(cursor: string): { createdAt: number; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split('.')
  const createdAt = Number(at)
  if (!id || !/^[0-9a-f-]{36}$/.test(id) || !Number.isSafeInteger(createdAt)) throw new InvalidRequest('cursor is not one this API returned')
  return { createdAt, id }
}
