/**
 * Whether an error means the store could not be reached or could not take the write right now (as
 * opposed to a bug or bad input): the caller should answer 503 and the client try again. Covers
 * node's socket errors, PostgreSQL's connection-exception class (08), shutdowns (57P0x) and
 * too_many_connections, pg's own pool messages, and SQLite busy, I/O, full and cannot-open.
 */
export function isStoreUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const code = String((err as { code?: unknown }).code ?? '')
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(code)) return true
  if (/^08...$/.test(code) || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true
  if (/^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN)/.test(code)) return true
  const message = String((err as { message?: unknown }).message ?? '')
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED/.test(message)
}
