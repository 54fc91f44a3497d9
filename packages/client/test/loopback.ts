/**
 * A scripted HTTP server on loopback for the SDK's unit tests: each request gets the next answer from
 * the script (the last one repeats), and every request is recorded as it arrived. Real sockets, real
 * fetch: nothing of the SDK is replaced.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
  /** performance.now() when the request was complete. */
  at: number
}

export type Answer =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  /** Close the connection without an answer. */
  | { drop: true }
  /** Answer after this long (or never, if the client leaves first). */
  | { delayMs: number; andThen: Answer }

export class Loopback {
  readonly received: Received[] = []
  private script: Answer[] = []
  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(): Promise<Loopback> {
    let self: Loopback | undefined
    const server = createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8').on('data', (d: string) => {
        body += d
      })
      req.on('end', () => {
        self!.received.push({ method: req.method!, url: req.url!, headers: req.headers, body, at: performance.now() })
        const n = self!.received.length - 1
        const answer = self!.script[Math.min(n, self!.script.length - 1)] ?? { status: 200, body: {} }
        void respond(res, answer)
      })
    })
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
    self = new Loopback(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    return self
  }

  /** The answers, in order, for the requests from now on. */
  answer(...script: Answer[]): this {
    this.script = script
    this.received.length = 0
    return this
  }

  url(path: string): string {
    return this.origin + path
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((ok) => this.server.close(() => ok()))
  }
}

async function respond(res: ServerResponse, answer: Answer): Promise<void> {
  if ('drop' in answer) {
    res.socket?.destroy()
    return
  }
  if ('delayMs' in answer) {
    await new Promise((r) => setTimeout(r, answer.delayMs))
    if (res.socket?.destroyed) return
    return respond(res, answer.andThen)
  }
  const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body)
  const type = typeof answer.body === 'string' ? 'text/plain' : 'application/json'
  res.writeHead(answer.status, { 'content-type': type, ...answer.headers }).end(text)
}
