import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { ConnectionError } from 'fastify'

/** Node's refusals before a request exists, as a status and what to tell the client. */
function refusal(code: string): [number, string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'the request headers are too large']
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return [413, 'the chunk extensions are too large']
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'the request took too long to arrive']
    default:
      return [400, 'the request is not valid HTTP']
  }
}

/**
 * The request line's method, when the chunk that failed starts with it. Headers that arrive in
 * several chunks fail in a later one, where the method cannot be seen: then it is unknown.
 */
function methodOf(err: ConnectionError): string | undefined {
  const raw: unknown = err.rawPacket
  if (!Buffer.isBuffer(raw)) return undefined
  return /^([A-Z]{3,10}) /.exec(raw.subarray(0, 12).toString('latin1'))?.[1]
}

/** A response still under way on this socket (a request before the one that failed), if any. */
const responseOn = (socket: Socket): ServerResponse | undefined => (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined

/**
 * Fastify's clientErrorHandler: a request Node could not parse (headers over the limit, bad syntax, too
 * slow) gets the right status and a small OAuth-shaped JSON error, then the connection closes. No
 * content when the request is HEAD (RFC 9110 §9.3.2), or may be: content after a HEAD response is
 * read as the start of the next one. A socket that is gone, or already carries a response, is left
 * alone: anything written now would be read as part of, or instead of, that response. The response
 * under way only closes the connection when it ends, if it still can.
 */
export function clientErrorHandler(err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return
  const inFlight = responseOn(socket)
  if (inFlight) {
    if (!inFlight.headersSent) inFlight.setHeader('connection', 'close')
    return
  }
  const [status, description] = refusal(err.code)
  const method = methodOf(err)
  const body = method === undefined || method === 'HEAD' ? '' : JSON.stringify({ error: 'invalid_request', error_description: description })
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'Connection: close',
    'Cache-Control: no-store',
    ...(body ? ['Content-Type: application/json; charset=utf-8'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
  ]
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy())
}
