import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { ClientMetadataError, maxMetadataDocumentBytes, type ClientMetadataFetcher, type FetchedMetadataDocument } from '@fieldgate/core'
import { assertPublicTarget, guardedLookup, RefusedTargetError, systemResolve, type Resolve } from './webhooks/targets.js'

export interface MetadataFetchOptions {
  /** FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS: loopback and private addresses may be fetched (development, tests). */
  allowPrivateTargets: boolean
  timeoutMs?: number
  maxBytes?: number
  /** DNS, injectable so tests never ask real DNS. */
  resolve?: Resolve
}

/**
 * Fetches client metadata documents (draft-ietf-oauth-client-id-metadata-document-01 §4) as Data API
 * deliveries reach receivers: unless private targets are allowed, the host must resolve to public
 * addresses only (RFC 6890's special-purpose ranges refused, webhooks/targets.ts), checked again at
 * connect time so DNS rebinding cannot slip past. Then: one GET, no redirects followed (§4), a 200 with
 * a JSON media type, at most 5 KB read (§7.7), within the timeout; anything else is an error, never cached.
 */
export function metadataFetcher(opts: MetadataFetchOptions): ClientMetadataFetcher {
  const resolve = opts.resolve ?? systemResolve
  const timeoutMs = opts.timeoutMs ?? 5000
  const maxBytes = opts.maxBytes ?? maxMetadataDocumentBytes
  return {
    async fetch(url: URL): Promise<FetchedMetadataDocument> {
      try {
        if (!opts.allowPrivateTargets) await assertPublicTarget(url, resolve)
        const res = await get(url, { timeoutMs, ...(opts.allowPrivateTargets ? {} : { lookup: guardedLookup(resolve) }) })
        return await documentOf(res, maxBytes)
      } catch (err) {
        if (err instanceof ClientMetadataError) throw err
        throw new ClientMetadataError(reason(err, url, timeoutMs))
      }
    },
  }
}

function get(url: URL, o: { timeoutMs: number; lookup?: ReturnType<typeof guardedLookup> }): Promise<IncomingMessage> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((ok, fail) => {
    const req = send(url, {
      method: 'GET',
      headers: { accept: 'application/json', 'user-agent': 'Fieldgate-ClientMetadata/1' },
      signal: AbortSignal.timeout(o.timeoutMs),
      agent: false,
      ...(o.lookup ? { lookup: o.lookup } : {}),
    })
    req.on('error', fail)
    req.on('response', ok)
    req.end()
  })
}

/** The body of a 200 with a JSON media type, read up to the cap; anything else is refused as it arrives. */
async function documentOf(res: IncomingMessage, maxBytes: number): Promise<FetchedMetadataDocument> {
  const status = res.statusCode ?? 0
  if (status !== 200) {
    res.destroy()
    throw new ClientMetadataError(
      status >= 300 && status < 400 ? `its client metadata document redirects (${status}), and redirects are not followed` : `its client metadata document answered ${status}`,
    )
  }
  const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    res.destroy()
    throw new ClientMetadataError('its client metadata document is not served as JSON (application/json)')
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBytes) {
      res.destroy()
      throw new ClientMetadataError(`its client metadata document is larger than ${maxBytes} bytes`)
    }
    chunks.push(chunk)
  }
  return { body: Buffer.concat(chunks).toString('utf8'), maxAgeSeconds: maxAge(res.headers['cache-control']) }
}

/** RFC 9111 §5.2.2.1 max-age; no-store and no-cache mean "as short as allowed" (0, held up to the minimum by core). */
export function maxAge(header: string | undefined): number | undefined {
  if (header === undefined) return undefined
  const directives = header
    .toLowerCase()
    .split(',')
    .map((d) => d.trim())
  if (directives.some((d) => d === 'no-store' || d === 'no-cache')) return 0
  const value = directives
    .find((d) => d.startsWith('max-age='))
    ?.slice(8)
    .replace(/^"|"$/g, '')
  return value !== undefined && /^\d{1,10}$/.test(value) ? Number(value) : undefined
}

function reason(err: unknown, url: URL, timeoutMs: number): string {
  if (err instanceof RefusedTargetError) return `its client metadata document's host ${url.hostname} is a loopback, private or reserved address, which this server does not fetch`
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `its client metadata document did not arrive within ${timeoutMs} ms`
  return `its client metadata document could not be fetched (${err instanceof Error ? err.message.slice(0, 100) : 'unknown error'})`
}
