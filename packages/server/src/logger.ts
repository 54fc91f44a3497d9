import type { FastifyBaseLogger } from 'fastify'
import pino, { type Bindings, type ChildLoggerOptions, type Logger } from 'pino'

/** Query parameters and headers that carry credentials; never written to a log. */
const secretParams = /([?&](?:access_token|client_secret|code|code_verifier|token|refresh_token)=)[^&]*/gi

export const redactUrl = (url: string): string => url.replace(secretParams, '$1[redacted]')

/** JSON lines to stdout, or to `destination` (tests read what would be logged). */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.client_secret', '*.access_token'], censor: '[redacted]' },
      serializers: {
        req: (req: { method: string; url: string; id?: string }) => ({ id: req.id, method: req.method, url: redactUrl(req.url) }),
      },
    },
    destination,
  )
}

/** pino's level numbers: a line below the logger's level is not even built. */
const levels = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Number.POSITIVE_INFINITY }
type Level = Exclude<keyof typeof levels, 'silent'>

const rank = new Map<string, number>(Object.entries(levels))

/** Whether a logger at `loggerLevel` writes a line at `level`. */
export const writes = (loggerLevel: string, level: Level): boolean => (rank.get(loggerLevel) ?? 0) <= levels[level]

/**
 * A request's logger (Fastify's childLoggerFactory), made into a pino child only when it first writes a
 * line. Most requests write none at the usual levels, and a child costs on every request: pino runs the
 * wildcard redaction paths over its bindings (about 2.7 % of a validation request's CPU, profiled).
 */
export class RequestLogger implements FastifyBaseLogger {
  #child: FastifyBaseLogger | undefined
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  get level(): string {
    return this.#child?.level ?? this.#options.level ?? this.#parent.level
  }
  set level(level: string) {
    this.#made().level = level
  }

  fatal(obj: unknown, msg?: string, ...args: unknown[]): void {
    this.#write('fatal', obj, msg, args)
  }
  error(obj: unknown, msg?: string, ...args: unknown[]): void {
    this.#write('error', obj, msg, args)
  }
  warn(obj: unknown, msg?: string, ...args: unknown[]): void {
    this.#write('warn', obj, msg, args)
  }
  info(obj: unknown, msg?: string, ...args: unknown[]): void {
    this.#write('info', obj, msg, args)
  }
  debug(obj: unknown, msg?: string, ...args: unknown[]): void {
    this.#write('debug', obj, msg, args)
  }
  trace(obj: unknown, msg?: string, ...args: unknown[]): void {
    this.#write('trace', obj, msg, args)
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#made().child(bindings, options)
  }

  #made(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options)
    return this.#child
  }

  #write(level: Level, obj: unknown, msg: string | undefined, args: unknown[]): void {
    if (!writes(this.level, level)) return
    // Passed on as given: pino reads `info('text')` and `info(obj)` by their number of arguments.
    if (msg === undefined && args.length === 0) this.#made()[level](obj)
    else this.#made()[level](obj, msg, ...args)
  }
}
