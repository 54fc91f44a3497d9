import { hkdfSync, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  ChangeFeed,
  KeyRing,
  loadGateway,
  securityLog,
  standardGrantTypes,
  StoreCache,
  ensureSigningKeys,
  parseMasterKey,
  type Config,
  type CoreContext,
  type Storage,
} from '@fieldgate/core'
import { openStorage } from '@fieldgate/storage'
import type { Logger } from 'pino'
import { metadataFetcher } from './client-metadata.js'
import { defaultMailerTiming, Mailer } from './mail/mailer.js'
import { loadSmtpCa } from './mail/smtp-ca.js'
import { Dispatcher } from './webhooks/dispatcher.js'

/** One process's view of a deployment: its store, keys, caches and the change feed that keeps them fresh. */
export interface Runtime {
  readonly ctx: CoreContext
  readonly storage: Storage
  readonly masterKey: Buffer
  /** Delivers the Data API outbox (started in serving processes). */
  readonly dispatcher: Dispatcher
  /** Sends the mail outbox over SMTP, or files it in the local mailbox (started in serving processes). */
  readonly mailer: Mailer
  /** Derived from the master key, so every process of a deployment accepts the others' form tokens. */
  readonly csrfKey: Buffer
  close(): Promise<void>
}

export interface RuntimeOptions {
  /** Run migrations and create missing signing keys (the primary process, or the CLI). */
  prepare: boolean
  /** Follow the change feed (serving processes); one-shot CLI commands do not. */
  follow: boolean
  /** PostgreSQL schema to use (tests isolate themselves with one). */
  schema?: string
}

export async function openRuntime(config: Config, logger: Logger, opts: RuntimeOptions): Promise<Runtime> {
  const storage = openStorage({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, ...(opts.schema ? { schema: opts.schema } : {}) })
  try {
    if (opts.prepare) await storage.migrate()
    const masterKey = loadMasterKey(config, logger)
    // The feed's starting point comes first, so keys another process adds while this one loads are not missed.
    const cursor = await storage.latestChangeSeq()
    const records = opts.prepare ? await ensureSigningKeys(storage, config.signingAlg, masterKey) : await storage.listSigningKeys()
    const cache = new StoreCache(storage, config.cacheEntries)
    // One line per event at warn, so a log pipeline can alert on them without parsing request lines;
    // the line names the account by id, never by address (the stored event has it, for the console).
    const security = securityLog(storage, {
      now: Date.now,
      log: ({ details, email: _email, ...event }) => logger.warn({ security: { ...event, ...details } }, `security event ${event.kind}`),
      onError: (err, event) => logger.error({ err, security: { kind: event.kind } }, 'storing a security event failed'),
    })
    // Client metadata documents are fetched under the Data API's SSRF rules (client-metadata.ts).
    const clientMetadata = config.registration.metadataDocuments ? { clientMetadata: metadataFetcher({ allowPrivateTargets: config.webhooks.allowPrivateTargets }) } : {}
    // The gateway file's APIs are resources tokens may be for (RFC 8707), as well as the forward-auth rules.
    const gateway = loadGateway(config)
    const smtpCa = loadSmtpCa(config)
    const ctx: CoreContext = {
      config,
      storage,
      masterKey,
      keys: KeyRing.load(records, masterKey),
      cache,
      grants: standardGrantTypes,
      security,
      now: Date.now,
      gateway,
      ...clientMetadata,
    }
    // A key reload that fails keeps the current ring and retries, without holding up the invalidations behind it.
    const reloadKeys = async (): Promise<void> => {
      try {
        ctx.keys = KeyRing.load(await storage.listSigningKeys(), masterKey)
      } catch (err) {
        logger.error({ err }, 'reloading signing keys failed; keeping the current ones and retrying in 1 s')
        setTimeout(() => void reloadKeys(), 1000).unref()
      }
    }
    const feed = new ChangeFeed(
      storage,
      config.changePollMs,
      async (change) => {
        cache.apply(change)
        if (change.kind === 'keys') await reloadKeys()
      },
      (err) => logger.warn({ err }, 'reading the change feed failed; retrying'),
    )
    // On PostgreSQL a commit anywhere wakes the feed at once (LISTEN/NOTIFY); the poll is the fallback.
    let stopWatching = async (): Promise<void> => {}
    if (opts.follow) {
      feed.start(cursor)
      stopWatching = storage.watchChanges(
        () => feed.wake(),
        (err) => logger.warn({ err }, 'listening for changes failed; polling meanwhile, listening again in 1 s'),
      )
    }
    // Serving processes deliver the Data API outbox; several share it without attempting an event twice.
    const { maxAgeSeconds, ...timing } = config.webhooks
    const dispatcher = new Dispatcher(ctx, masterKey, logger, { ...timing, maxAgeMs: maxAgeSeconds * 1000 })
    if (opts.follow) dispatcher.start()
    const mailer = new Mailer(storage, logger, { smtpUrl: config.smtpUrl, ca: smtpCa, from: config.mailFrom, now: Date.now, ...defaultMailerTiming })
    if (opts.follow) mailer.start()
    return {
      ctx,
      storage,
      masterKey,
      csrfKey: Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'fieldgate csrf v1', 32)),
      dispatcher,
      mailer,
      async close() {
        await stopWatching()
        feed.stop()
        await dispatcher.stop()
        await mailer.stop()
        await storage.close()
      },
    }
  } catch (err) {
    await storage.close().catch(() => {})
    throw err
  }
}

/**
 * The master key encrypts private signing keys. From FIELDGATE_MASTER_KEY in production; otherwise
 * generated once into the data directory (mode 0600), which only suits a single machine.
 */
export function loadMasterKey(config: Config, logger: Logger): Buffer {
  if (config.masterKey) return parseMasterKey(config.masterKey)
  const file = join(config.dataDir, 'master.key')
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
    try {
      writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' })
      logger.warn(
        { file },
        'FIELDGATE_MASTER_KEY is not set: generated a master key in the data directory. Set FIELDGATE_MASTER_KEY for production and keep it out of the data directory.',
      )
    } catch (err) {
      // Another process created it first; read theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  return parseMasterKey(readFileSync(file, 'utf8').trim())
}
