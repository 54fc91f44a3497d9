/** Raw HTTP/1.1 on one socket (slow bodies, idle keep-alive, shutdown). */
import { connect, type Socket } from 'node:net'
import { sleep } from './wait.js'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server sent and asserts on it
  json: any
}

/**
 * One TCP connection to a loopback port, driven by hand: fetch cannot trickle a body or keep a
 * connection idle on purpose. Responses need a Content-Length (every Fieldgate JSON answer has one).
 */
export class RawConnection {
  /** Resolves with performance.now() when the socket closes, by either side. */
  readonly closed: Promise<number>
  private buffer = Buffer.alloc(0)
  private wake: (() => void) | undefined
  private isClosed = false

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d])
      this.wake?.()
    })
    socket.on('error', () => {})
    this.closed = new Promise((ok) =>
      socket.once('close', () => {
        this.isClosed = true
        this.wake?.()
        ok(performance.now())
      }),
    )
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((ok, fail) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => ok(new RawConnection(socket)))
      socket.once('error', fail)
    })
  }

  /** Writes the request line and headers, then the body in `pieces` spread over `overMs`, then reads the response. */
  async send(method: string, path: string, opts: { headers?: Record<string, string>; body?: string; pieces?: number; overMs?: number } = {}): Promise<RawResponse> {
    await this.write(requestHead(method, path, opts.headers ?? {}, opts.body))
    const body = Buffer.from(opts.body ?? '')
    const pieces = Math.max(1, Math.min(opts.pieces ?? 1, body.length))
    for (let i = 0; i < pieces; i++) {
      if (i > 0 && opts.overMs) await sleep(opts.overMs / (pieces - 1))
      await this.write(body.subarray(Math.floor((i * body.length) / pieces), Math.floor(((i + 1) * body.length) / pieces)))
    }
    return this.response()
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((ok, fail) => this.socket.write(data, (err) => (err ? fail(err) : ok())))
  }

  /** The next complete response; rejects if the socket closes first or nothing complete comes within `withinMs`. */
  async response(withinMs = 10_000): Promise<RawResponse> {
    const start = performance.now()
    for (;;) {
      const res = this.takeResponse()
      if (res) return res
      if (this.isClosed) throw new Error('the connection closed before a complete response')
      const left = withinMs - (performance.now() - start)
      if (left <= 0) throw new Error(`no complete response within ${withinMs} ms`)
      await new Promise<void>((ok) => {
        const timer = setTimeout(ok, left)
        this.wake = () => {
          clearTimeout(timer)
          ok()
        }
      })
      this.wake = undefined
    }
  }

  destroy(): void {
    this.socket.destroy()
  }

  private takeResponse(): RawResponse | undefined {
    const end = this.buffer.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    const [statusLine, ...lines] = this.buffer.subarray(0, end).toString('latin1').split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = Number(headers['content-length'] ?? 0)
    if (this.buffer.length < end + 4 + length) return undefined
    const body = this.buffer.subarray(end + 4, end + 4 + length).toString('utf8')
    this.buffer = this.buffer.subarray(end + 4 + length)
    let json: unknown
    try {
      json = body === '' ? undefined : JSON.parse(body)
    } catch {
      json = undefined
    }
    return { status: Number(statusLine!.split(' ')[1]), headers, body, json }
  }
}

function requestHead(method: string, path: string, headers: Record<string, string>, body: string | undefined): string {
  const all: Record<string, string> = { host: '127.0.0.1', ...headers }
  if (body !== undefined) all['content-length'] = String(Buffer.byteLength(body))
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`
}
