import pino, { type Logger } from 'pino'

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
