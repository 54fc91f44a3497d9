import { Command, Option } from 'commander'
import {
  approveApp,
  cliActor,
  conflict,
  createApp,
  createGrant,
  invalid,
  listReviewQueue,
  notFound,
  rejectApp,
  setOperatorRole,
  suspendAccount,
  suspendApp,
  unsuspendAccount,
  unsuspendApp,
  createTenant,
  createUser,
  loadConfig,
  redeliverEvent,
  revokeGrant,
  rotateSecret,
  rotateSigningKeys,
  type App,
  type Config,
  removeMembership,
  securityEventKinds,
  setMembership,
  inviteMember,
  inviteOperator,
  type MailMessage,
  type SecurityEvent,
  type SigningKeyRecord,
} from '@fieldgate/core'
import { backupSqlite, restoreSqlite } from '@fieldgate/storage'
import {
  appInput,
  appJson,
  auditJson,
  createLogger,
  eventJson,
  grantJson,
  keyJson,
  mailJson,
  openRuntime,
  securityEventJson,
  serve,
  tenantJson,
  userJson,
  type Runtime,
} from '@fieldgate/server'

/**
 * `fieldgate`: runs the server and manages the store it serves. Every command accepts --json for
 * scripts; the store is the one the server uses (FIELDGATE_DATA_DIR or DATABASE_URL).
 */
const program = new Command('fieldgate').description('Fieldgate OAuth 2.0 authorization server').option('--json', 'print machine-readable JSON').showHelpAfterError()

/** Opens the store, runs `action`, prints its result, closes. Errors for people go to stderr, exit 1. */
function command(action: (rt: Runtime, config: Config, args: Record<string, string | undefined>, positional: string[]) => Promise<{ json: unknown; text: string }>) {
  return async (...argv: unknown[]) => {
    const cmd = argv[argv.length - 1] as Command
    const args = cmd.opts() as Record<string, string | undefined>
    const json = program.opts().json === true
    const config = loadConfig()
    const logger = createLogger(json ? 'error' : 'warn')
    const rt = await openRuntime(config, logger, { prepare: true, follow: false })
    try {
      const result = await action(
        rt,
        config,
        args,
        argv.slice(0, -2).filter((a): a is string => typeof a === 'string'),
      )
      process.stdout.write(json ? JSON.stringify(result.json, null, 2) + '\n' : result.text + '\n')
    } finally {
      await rt.close()
    }
  }
}

const keyLine = (k: SigningKeyRecord): string => `${k.kid}  ${k.alg}  ${k.state}`

program
  .command('serve')
  .description('start the HTTP server')
  .option('--port <port>', 'port to listen on (default 4400, FIELDGATE_PORT)')
  .option('--host <host>', 'address to listen on (default 127.0.0.1, FIELDGATE_HOST)')
  .option('--workers <n>', 'processes to run, one per core is best', '1')
  .action(async (opts: { port?: string; host?: string; workers: string }) => {
    const env = { ...process.env, ...(opts.port ? { FIELDGATE_PORT: opts.port } : {}), ...(opts.host ? { FIELDGATE_HOST: opts.host } : {}) }
    const config = loadConfig(env)
    const workers = Number(opts.workers)
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw invalid('--workers must be a whole number from 1 to 64')
    await serve(config, createLogger(config.logLevel), { workers })
  })

program
  .command('migrate')
  .description('create or upgrade the store schema and the first signing keys')
  .action(command(async (rt) => ({ json: { migrated: true, store: rt.storage.engine }, text: `store (${rt.storage.engine}) is up to date` })))

const tenants = program.command('tenants').description('customer organisations')
tenants
  .command('create')
  .requiredOption('--name <name>')
  .addOption(new Option('--environment <env>').choices(['sandbox', 'live']).default('sandbox'))
  .action(
    command(async (rt, _c, a) => {
      const t = await createTenant(rt.ctx, cliActor, { name: a.name!, environment: a.environment! })
      return { json: tenantJson(t), text: `tenant ${t.id} (${t.environment})\nmarketplace_id ${t.marketplaceId}` }
    }),
  )
tenants.command('list').action(
  command(async (rt) => {
    const list = await rt.storage.listTenants()
    return { json: list.map(tenantJson), text: list.map((t) => `${t.id}  ${t.environment.padEnd(7)}  ${t.name}`).join('\n') || 'no tenants' }
  }),
)

const users = program.command('users').description('people who sign in')
users
  .command('create')
  .requiredOption('--email <email>')
  .option('--password <password>', 'at least 10 characters (or FIELDGATE_PASSWORD)')
  .option('--tenant <id>', 'tenant to make them a member of')
  .addOption(new Option('--role <role>').choices(['owner', 'admin', 'member']).default('member'))
  .option('--operator', 'the operator role: the operator console, review and suspension')
  .action(
    command(async (rt, _c, a) => {
      const password = a.password ?? process.env.FIELDGATE_PASSWORD
      if (!password) throw invalid('give --password or set FIELDGATE_PASSWORD')
      const operator = (a as Record<string, unknown>).operator === true
      const u = await createUser(rt.ctx, cliActor, { email: a.email!, password, operator, ...(a.tenant ? { tenantId: a.tenant, role: a.role! } : {}) })
      return { json: { id: u.id, email: u.email }, text: `user ${u.id} <${u.email}>${operator ? ' (operator)' : ''}` }
    }),
  )
users
  .command('list')
  .option('--query <text>', 'part of an email')
  .option('--limit <n>', 'users to show', '100')
  .action(
    command(async (rt, _c, a) => {
      const list = await rt.storage.listUsers({ limit: limitOption(a.limit), ...(a.query ? { query: a.query } : {}) })
      const flags = (u: (typeof list)[number]) =>
        [u.operator ? 'operator' : '', u.emailVerifiedAt === null ? 'unverified' : '', u.suspendedAt !== null ? 'suspended' : ''].filter(Boolean).join(',')
      return { json: list.map(userJson), text: list.map((u) => `${u.id}  ${u.email}  ${flags(u)}`).join('\n') || 'no users' }
    }),
  )
users
  .command('add-membership')
  .description('add an account to a tenant, or change its role there')
  .requiredOption('--email <email>')
  .requiredOption('--tenant <id>')
  .addOption(new Option('--role <role>').choices(['owner', 'admin', 'member']).default('member'))
  .action(
    command(async (rt, _c, a) => {
      const m = await setMembership(rt.ctx, cliActor, { tenantId: a.tenant!, email: a.email!, role: a.role! })
      return { json: { user_id: m.userId, tenant_id: m.tenantId, role: m.role }, text: `${a.email} is ${m.role} of ${m.tenantId}` }
    }),
  )
users
  .command('remove-membership')
  .description('take an account out of a tenant (never its last owner)')
  .requiredOption('--email <email>')
  .requiredOption('--tenant <id>')
  .action(
    command(async (rt, _c, a) => {
      await removeMembership(rt.ctx, cliActor, { tenantId: a.tenant!, email: a.email! })
      return { json: { removed: true, email: a.email, tenant_id: a.tenant }, text: `${a.email} is no longer a member of ${a.tenant}` }
    }),
  )
users
  .command('invite')
  .description('mail a one-week invitation: to a tenant with a role, or (--operator) to be an operator')
  .requiredOption('--email <email>')
  .option('--tenant <id>', 'the tenant to join')
  .addOption(new Option('--role <role>').choices(['owner', 'admin', 'member']).default('member'))
  .option('--operator', 'an invitation to be an operator')
  .action(
    command(async (rt, _c, a) => {
      const operator = (a as Record<string, unknown>).operator === true
      if (operator === (a.tenant !== undefined)) throw invalid('give --tenant (with --role) or --operator')
      const sent = a.tenant
        ? await inviteMember(rt.ctx, cliActor, { tenantId: a.tenant, email: a.email!, role: a.role! })
        : await inviteOperator(rt.ctx, cliActor, { email: a.email! })
      return { json: { invited: sent.email, expires_at: new Date(sent.expiresAt).toISOString() }, text: `invitation mailed to ${sent.email}` }
    }),
  )
users
  .command('set-operator')
  .description('give the operator role, or take it with --off')
  .requiredOption('--email <email>')
  .option('--off', 'take the role away')
  .action(
    command(async (rt, _c, a) => {
      const operator = (a as Record<string, unknown>).off !== true
      const u = await setOperatorRole(rt.ctx, cliActor, { email: a.email!, operator })
      return { json: userJson(u), text: `${u.email} ${u.operator ? 'is an operator' : 'is not an operator'}` }
    }),
  )
users
  .command('suspend')
  .description('no sign-in, sessions end, and every app of theirs is suspended with the account')
  .requiredOption('--email <email>')
  .requiredOption('--reason <text>', 'told to the partner')
  .action(
    command(async (rt, _c, a) => {
      const r = await suspendAccount(rt.ctx, cliActor, { email: a.email!, reason: a.reason! })
      return {
        json: { user: userJson(r.user), apps: r.apps.map(appJson) },
        text: `${r.user.email} suspended, with ${r.apps.length} app(s): ${r.apps.map((x) => x.clientId).join(' ') || 'none'}`,
      }
    }),
  )
users
  .command('unsuspend')
  .requiredOption('--email <email>')
  .action(
    command(async (rt, _c, a) => {
      const r = await unsuspendAccount(rt.ctx, cliActor, { email: a.email! })
      return { json: { user: userJson(r.user), apps: r.apps.map(appJson) }, text: `${r.user.email} active again, with ${r.apps.length} app(s)` }
    }),
  )

const apps = program.command('apps').description('OAuth clients')
apps
  .command('create')
  .requiredOption('--name <name>')
  .addOption(new Option('--kind <kind>').choices(['private', 'public']).makeOptionMandatory())
  .option('--tenant <id>', 'the tenant a private app belongs to')
  .addOption(new Option('--environment <env>').choices(['sandbox', 'live']))
  .option('--scopes <scopes>', 'space-separated scopes the app may ask for (default "api")')
  .option('--token-ttl <seconds>', 'access-token lifetime (default 28000 public, 3600 private)')
  .option('--install-url <url>')
  .option('--redirect-uri <uri...>', 'redirect URIs, exact match')
  .option('--contact-email <email>')
  .option('--data-api-url <url>')
  .option('--listed', 'list it in the marketplace (a public app with an install URL)')
  .action(
    command(async (rt, _c, a) => {
      // Commander collects a variadic option into an array; every other option is one string.
      const redirectUris = (a as Record<string, unknown>).redirectUri
      const created = await createApp(
        rt.ctx,
        cliActor,
        appInput({
          name: a.name!,
          kind: a.kind!,
          tenant_id: a.tenant,
          environment: a.environment,
          scopes: a.scopes,
          install_url: a.installUrl,
          token_ttl: a.tokenTtl ? Number(a.tokenTtl) : undefined,
          contact_email: a.contactEmail,
          data_api_url: a.dataApiUrl,
          listed: a.listed !== undefined,
          redirect_uris: Array.isArray(redirectUris) ? redirectUris.filter((u): u is string => typeof u === 'string') : undefined,
        }),
      )
      const sandbox = created.sandboxTenant ? { sandbox_target_id: created.sandboxTenant.id } : {}
      return {
        json: { ...appJson(created.app), client_secret: created.clientSecret, ...sandbox },
        text: [
          `app ${created.app.name} (${created.app.kind}, ${created.app.environment})`,
          `client_id     ${created.app.clientId}`,
          `client_secret ${created.clientSecret}`,
          ...(created.sandboxTenant ? [`sandbox target_id ${created.sandboxTenant.id}`] : []),
          'The client secret is shown only this once: store it now.',
        ].join('\n'),
      }
    }),
  )
/** One line per app, with its review and suspension where they matter. */
const appLine = (a: App): string =>
  [a.clientId, a.kind.padEnd(7), a.environment.padEnd(7), a.name, a.review !== 'approved' ? `[${a.review}]` : '', a.suspendedAt !== null ? '[suspended]' : '']
    .filter(Boolean)
    .join('  ')

apps.command('list').action(
  command(async (rt) => {
    const list = await rt.storage.listApps()
    return { json: list.map(appJson), text: list.map(appLine).join('\n') || 'no apps' }
  }),
)
apps
  .command('review')
  .description('what partners published and changed, waiting for an operator')
  .command('list')
  .action(
    command(async (rt) => {
      const list = await listReviewQueue(rt.ctx, cliActor, { limit: 500 })
      const line = (a: App) => `${appLine(a)}  ${a.approvedAt === null ? 'new' : `changes ${Object.keys(a.proposed ?? {}).join(',')}`}`
      return { json: list.map(appJson), text: list.map(line).join('\n') || 'nothing waits for review' }
    }),
  )
apps
  .command('approve')
  .argument('<client_id>')
  .option('--reason <text>', 'a note to the partner')
  .action(
    command(async (rt, _c, a, [clientId]) => {
      const app = await approveApp(rt.ctx, cliActor, { clientId: clientId!, ...(a.reason ? { reason: a.reason } : {}) })
      return { json: appJson(app), text: `${app.name} (${app.clientId}) approved` }
    }),
  )
for (const [verb, run, done] of [
  ['reject', rejectApp, 'rejected; the partner was told why'],
  ['suspend', suspendApp, 'suspended: its tokens stop working now, on every instance'],
] as const) {
  apps
    .command(verb)
    .argument('<client_id>')
    .requiredOption('--reason <text>', 'told to the partner')
    .action(
      command(async (rt, _c, a, [clientId]) => {
        const app = await run(rt.ctx, cliActor, { clientId: clientId!, reason: a.reason! })
        return { json: appJson(app), text: `${app.name} (${app.clientId}) ${done}` }
      }),
    )
}
apps
  .command('unsuspend')
  .argument('<client_id>')
  .action(
    command(async (rt, _c, _a, [clientId]) => {
      const app = await unsuspendApp(rt.ctx, cliActor, { clientId: clientId! })
      return { json: appJson(app), text: `${app.name} (${app.clientId}) is no longer suspended` }
    }),
  )
apps
  .command('rotate-secret')
  .argument('<client_id>')
  .option('--grace <seconds>', 'how long the old secret keeps working', '86400')
  .action(
    command(async (rt, _c, a, [clientId]) => {
      const r = await rotateSecret(rt.ctx, cliActor, { clientId: clientId!, graceSeconds: Number(a.grace) })
      const until = new Date(r.oldSecretsExpireAt).toISOString()
      return {
        json: { client_id: r.app.clientId, client_secret: r.clientSecret, old_secret_expires_at: until },
        text: `client_secret ${r.clientSecret}\nThe old secret works until ${until}. The new one is shown only this once.`,
      }
    }),
  )

const grants = program.command('grants').description('app ↔ tenant connections')
grants
  .command('create')
  .requiredOption('--app <client_id>')
  .requiredOption('--tenant <id>')
  .option('--scopes <scopes>', "default: all the app's scopes")
  .action(
    command(async (rt, _c, a) => {
      const g = await createGrant(rt.ctx, cliActor, { clientId: a.app!, tenantId: a.tenant!, ...(a.scopes !== undefined ? { scopes: a.scopes } : {}) })
      return { json: grantJson(g), text: `grant ${g.id} (${g.scopes.join(' ')})` }
    }),
  )
grants
  .command('revoke')
  .argument('<id>')
  .action(
    command(async (rt, _c, _a, [id]) => {
      const g = await revokeGrant(rt.ctx, cliActor, { grantId: id! })
      return { json: grantJson(g), text: `grant ${g.id} revoked: its tokens stop working now` }
    }),
  )
grants
  .command('list')
  .option('--tenant <id>')
  .action(
    command(async (rt, _c, a) => {
      const list = await rt.storage.listGrants(a.tenant ? { tenantId: a.tenant } : {})
      return { json: list.map(grantJson), text: list.map((g) => `${g.id}  ${g.status.padEnd(7)}  tenant ${g.tenantId}  ${g.scopes.join(' ')}`).join('\n') || 'no grants' }
    }),
  )

const keys = program.command('keys').description('token signing keys')
keys
  .command('rotate')
  .description('the published next key starts signing; the old one verifies until its tokens expire')
  .action(
    command(async (rt, config) => {
      const list = await rotateSigningKeys(rt.ctx, cliActor, { alg: config.signingAlg, defaultMaxTtl: Math.max(config.tokenTtl.public, config.tokenTtl.private) })
      return { json: list.map(keyJson), text: list.map(keyLine).join('\n') }
    }),
  )
keys.command('list').action(
  command(async (rt) => {
    const list = await rt.storage.listSigningKeys()
    return { json: list.map(keyJson), text: list.map(keyLine).join('\n') }
  }),
)

function limitOption(value: string | undefined): number {
  const limit = Number(value)
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw invalid('--limit must be a whole number from 1 to 10000')
  return limit
}

/** The app an `--app <client_id>` filter names, if given; an unknown one is an error, not an empty list. */
async function optionalApp(rt: Runtime, clientId: string | undefined) {
  if (!clientId) return undefined
  const app = await rt.storage.getAppByClientId(clientId)
  if (!app) throw notFound(`no app with client_id ${clientId}`)
  return app
}

program
  .command('audit')
  .description('who did what, when')
  .command('list')
  .option('--app <client_id>', 'only entries about this app')
  .option('--tenant <id>', 'only entries about this tenant')
  .option('--limit <n>', 'newest entries to show', '100')
  .action(
    command(async (rt, _c, a) => {
      const limit = limitOption(a.limit)
      const app = await optionalApp(rt, a.app)
      const list = await rt.storage.listAudit({ ...(app ? { appIds: [app.id] } : {}), ...(a.tenant ? { tenantIds: [a.tenant] } : {}), limit })
      return {
        json: list.map(auditJson),
        text:
          list
            .map((e) =>
              [
                new Date(e.at).toISOString(),
                e.actor.padEnd(20),
                e.action.padEnd(18),
                `client_id=${e.clientId ?? '-'}`,
                `tenant=${e.tenantId ?? '-'}`,
                `address=${e.address ?? '-'}`,
                e.objectId,
              ].join('  '),
            )
            .join('\n') || 'no entries',
      }
    }),
  )

program
  .command('mail')
  .description('the mail outbox: with no FIELDGATE_SMTP_URL, the local mailbox, messages and all')
  .command('list')
  .addOption(new Option('--state <state>').choices(['local', 'pending', 'sent', 'failed']))
  .option('--query <text>', 'part of a recipient or subject')
  .option('--limit <n>', 'newest messages to show', '20')
  .action(
    command(async (rt, _c, a) => {
      const state = mailStates.find((s) => s === a.state)
      const list = await rt.storage.listMail({ limit: limitOption(a.limit), ...(state ? { state } : {}), ...(a.query ? { query: a.query } : {}) })
      const shown = (m: MailMessage) =>
        [
          `${new Date(m.createdAt).toISOString()}  ${m.state.padEnd(7)}  ${m.to}  ${m.subject}${m.error ? `  (${m.error})` : ''}`,
          ...(m.state === 'local' && m.text ? ['', m.text, ''] : []),
        ].join('\n')
      return { json: list.map(mailJson), text: list.map(shown).join('\n') || 'no mail' }
    }),
  )

const mailStates = ['local', 'pending', 'sent', 'failed'] as const

const events = program.command('events').description('Data API deliveries, and security events')
events
  .command('list')
  .option('--app <client_id>', "only this app's events")
  .addOption(new Option('--state <state>').choices(['pending', 'delivered', 'failed']))
  .option('--limit <n>', 'newest events to show', '50')
  .action(
    command(async (rt, _c, a) => {
      const limit = limitOption(a.limit)
      const app = await optionalApp(rt, a.app)
      const list = await rt.storage.listEvents({ ...(app ? { appId: app.id } : {}), ...(a.state ? { state: a.state as 'pending' } : {}), limit })
      const withAttempts = await Promise.all(list.map(async (e) => ({ e, attempts: await rt.storage.listAttempts(e.id) })))
      return {
        json: withAttempts.map(({ e, attempts }) => eventJson(e, attempts)),
        text: list.map((e) => `${e.id}  ${e.type.padEnd(20)}  ${e.state.padEnd(9)}  ${e.attempts} attempts${e.lastError ? `  ${e.lastError}` : ''}`).join('\n') || 'no events',
      }
    }),
  )
events
  .command('security')
  .description('security events, newest first: failed sign-ins, resets, consents, code replays, review decisions, suspensions')
  .addOption(new Option('--kind <kind>', 'only this kind').choices([...securityEventKinds]))
  .option('--query <text>', 'part of an email, client_id or address')
  .option('--limit <n>', 'newest events to show', '50')
  .action(
    command(async (rt, _c, a) => {
      const kind = securityEventKinds.find((k) => k === a.kind)
      const list = await rt.storage.listSecurityEvents({ limit: limitOption(a.limit), ...(kind ? { kinds: [kind] } : {}), ...(a.query ? { query: a.query } : {}) })
      const line = (e: SecurityEvent) =>
        [
          new Date(e.at).toISOString(),
          e.kind.padEnd(20),
          e.email ?? e.userId ?? '-',
          `address=${e.address ?? '-'}`,
          `client_id=${e.clientId ?? '-'}`,
          Object.keys(e.details).length ? JSON.stringify(e.details) : '',
        ]
          .join('  ')
          .trimEnd()
      return { json: list.map(securityEventJson), text: list.map(line).join('\n') || 'no security events' }
    }),
  )
events
  .command('redeliver')
  .argument('<id>')
  .description('send a delivered or failed event again, same id and body')
  .action(
    command(async (rt, _c, _a, [id]) => {
      const { event, queued } = await redeliverEvent(rt.ctx, cliActor, { eventId: id! })
      if (!queued) throw conflict(`event ${id} is already waiting to be delivered`)
      const again = (await rt.storage.getEvent(event.id))!
      return { json: eventJson(again), text: `event ${event.id} will be delivered again` }
    }),
  )

program
  .command('backup')
  .argument('<file>', 'where to write the copy (a new file)')
  .description('a consistent copy of the embedded SQLite store, taken while the server runs')
  .action(async (file: string) => {
    const config = loadConfig()
    if (config.databaseUrl) throw invalid('the store is PostgreSQL: back it up with pg_dump (see docs/deployment.md)')
    const { pages } = await backupSqlite(config.dataDir, file)
    const json = program.opts().json === true
    process.stdout.write(json ? JSON.stringify({ backup: file, pages }) + '\n' : `backed up ${pages} pages to ${file}\n`)
  })

program
  .command('restore')
  .argument('<file>', 'a file made by fieldgate backup')
  .description('replace the embedded SQLite store with a backup; stop the server first')
  .action(async (file: string) => {
    const config = loadConfig()
    if (config.databaseUrl) throw invalid('the store is PostgreSQL: restore it with pg_restore (see docs/deployment.md)')
    restoreSqlite(config.dataDir, file)
    const json = program.opts().json === true
    process.stdout.write(json ? JSON.stringify({ restored: file }) + '\n' : `restored ${file}; start the server again\n`)
  })

// Errors are for people: one line on stderr, no stack trace, exit code 1.
program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`fieldgate: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
