import { readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import {
  appCategories,
  approveApp,
  cliActor,
  ConfigError,
  deleteApp,
  isLookupKey,
  OperationError,
  portNumber,
  renameTenant,
  updateApp,
  type AppFields,
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
  knownScopes,
  removeMembership,
  securityEventKinds,
  setMembership,
  inviteMember,
  inviteOperator,
  type MailMessage,
  type SecurityEvent,
  type SigningKeyRecord,
} from '@fieldgate/core'
import { backupSqlite, DataDirBusyError, isStoreUnavailable, restoreSqlite } from '@fieldgate/storage'
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

/** Whether --json was given (before any `--`): known before Commander parses, so its own errors are JSON too. */
const jsonMode = ((args: string[]) => args.slice(0, args.includes('--') ? args.indexOf('--') : undefined).includes('--json'))(process.argv.slice(2))

/** The version in this package's package.json (dist/src/main.js → ../../package.json). */
function cliVersion(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : 'unknown'
}

// Set before any subcommand is made: each copies these. Commander throws instead of exiting (exitOverride),
// and under --json writes nothing of its own, so the one error printed is the JSON one (see `fail`).
const program = new Command('fieldgate')
  .description('Fieldgate OAuth 2.0 authorization server: serve it, and manage the store it serves')
  .version(cliVersion(), '-V, --version', 'print the version of fieldgate')
  .option('--json', 'print JSON: the result on stdout, an error as {"error","message"} on stderr')
  .helpOption('-h, --help', 'show help for the command')
  .helpCommand('help [command]', 'show help for a command')
  .exitOverride()
  .configureHelp({ showGlobalOptions: true })
  .configureOutput({ writeErr: (text) => (jsonMode ? undefined : process.stderr.write(text)) })
  .showHelpAfterError()

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
  .option('--port <port>', 'port to listen on, 0 to 65535 (default 4400, or FIELDGATE_PORT)')
  .option('--host <host>', 'address to listen on (default 127.0.0.1, or FIELDGATE_HOST)')
  .option('--workers <n>', 'processes to run, one per core is best', '1')
  .action(async (opts: { port?: string; host?: string; workers: string }) => {
    // --port wins over FIELDGATE_PORT, and the issuer derived from it follows (unless FIELDGATE_ISSUER is set).
    const port = opts.port === undefined ? {} : { port: portNumber(opts.port, '--port') }
    const config = loadConfig({ ...process.env, ...(opts.host ? { FIELDGATE_HOST: opts.host } : {}) }, port)
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
  .description('make a tenant; prints its id and marketplace_id')
  .requiredOption('--name <name>', "the tenant's name, as people see it")
  .addOption(new Option('--environment <env>', 'sandbox for tests, live for real customers').choices(['sandbox', 'live']).default('sandbox'))
  .action(
    command(async (rt, _c, a) => {
      const t = await createTenant(rt.ctx, cliActor, { name: a.name!, environment: a.environment! })
      return { json: tenantJson(t), text: `tenant ${t.id} (${t.environment})\nmarketplace_id ${t.marketplaceId}` }
    }),
  )
tenants
  .command('list')
  .description('every tenant, oldest first')
  .option('--query <text>', 'part of a name or id')
  .option('--limit <n>', 'tenants to show, at most 500', '500')
  .action(
    command(async (rt, _c, a) => {
      const list = await rt.storage.listTenants({ limit: limitOption(a.limit, 500), ...(a.query ? { query: a.query } : {}) })
      return { json: list.map(tenantJson), text: list.map((t) => `${t.id}  ${t.environment.padEnd(7)}  ${t.name}`).join('\n') || 'no tenants' }
    }),
  )
tenants
  .command('rename')
  .description('give a tenant a new name; every instance shows it at once')
  .argument('<tenant_id>', 'the tenant to rename')
  .requiredOption('--name <name>', 'the new name')
  .action(
    command(async (rt, _c, a, [tenantId]) => {
      const t = await renameTenant(rt.ctx, cliActor, { tenantId: tenantId!, name: a.name! })
      return { json: tenantJson(t), text: `tenant ${t.id} is now ${t.name}` }
    }),
  )

const users = program.command('users').description('people who sign in')
users
  .command('create')
  .description('make an account, confirmed already (an operator vouches for the address)')
  .requiredOption('--email <email>', 'the address they sign in with')
  .option('--password <password>', 'at least 10 characters (or FIELDGATE_PASSWORD)')
  .option('--tenant <id>', 'tenant to make them a member of')
  .addOption(new Option('--role <role>', 'their role in --tenant').choices(['owner', 'admin', 'member']).default('member'))
  .option('--operator', 'the operator role: the operator console, review and suspension')
  .action(
    command(async (rt, _c, a) => {
      const password = a.password ?? process.env.FIELDGATE_PASSWORD
      if (!password) throw invalid('give --password or set FIELDGATE_PASSWORD')
      const operator = flag(a, 'operator') === true
      const u = await createUser(rt.ctx, cliActor, { email: a.email!, password, operator, ...(a.tenant ? { tenantId: a.tenant, role: a.role! } : {}) })
      return { json: { id: u.id, email: u.email }, text: `user ${u.id} <${u.email}>${operator ? ' (operator)' : ''}` }
    }),
  )
users
  .command('list')
  .description('accounts, oldest first, tagged operator, unverified, suspended')
  .option('--query <text>', 'part of an email')
  .option('--tenant <id>', "only this tenant's members")
  .option('--operator', 'only operators')
  .option('--no-operator', 'only people who are not operators')
  .option('--limit <n>', 'users to show, at most 500', '100')
  .action(
    command(async (rt, _c, a) => {
      const tenant = await optionalTenant(rt, a.tenant)
      const operator = flag(a, 'operator')
      const list = await rt.storage.listUsers({
        limit: limitOption(a.limit, 500),
        ...(a.query ? { query: a.query } : {}),
        ...(tenant ? { tenantId: tenant.id } : {}),
        ...(operator !== undefined ? { operator } : {}),
      })
      const flags = (u: (typeof list)[number]) =>
        [u.operator ? 'operator' : '', u.emailVerifiedAt === null ? 'unverified' : '', u.suspendedAt !== null ? 'suspended' : ''].filter(Boolean).join(',')
      return { json: list.map(userJson), text: list.map((u) => `${u.id}  ${u.email}  ${flags(u)}`).join('\n') || 'no users' }
    }),
  )
users
  .command('add-membership')
  .description('add an account to a tenant, or change its role there')
  .requiredOption('--email <email>', 'the account')
  .requiredOption('--tenant <id>', 'the tenant')
  .addOption(new Option('--role <role>', 'their role there').choices(['owner', 'admin', 'member']).default('member'))
  .action(
    command(async (rt, _c, a) => {
      const m = await setMembership(rt.ctx, cliActor, { tenantId: a.tenant!, email: a.email!, role: a.role! })
      return { json: { user_id: m.userId, tenant_id: m.tenantId, role: m.role }, text: `${a.email} is ${m.role} of ${m.tenantId}` }
    }),
  )
users
  .command('remove-membership')
  .description('take an account out of a tenant (never its last owner)')
  .requiredOption('--email <email>', 'the account')
  .requiredOption('--tenant <id>', 'the tenant')
  .action(
    command(async (rt, _c, a) => {
      await removeMembership(rt.ctx, cliActor, { tenantId: a.tenant!, email: a.email! })
      return { json: { removed: true, email: a.email, tenant_id: a.tenant }, text: `${a.email} is no longer a member of ${a.tenant}` }
    }),
  )
users
  .command('invite')
  .description('mail a one-week invitation: to a tenant with a role, or (--operator) to be an operator')
  .requiredOption('--email <email>', 'where the invitation goes')
  .option('--tenant <id>', 'the tenant to join')
  .addOption(new Option('--role <role>', 'their role in --tenant').choices(['owner', 'admin', 'member']).default('member'))
  .option('--operator', 'an invitation to be an operator')
  .action(
    command(async (rt, _c, a) => {
      const operator = flag(a, 'operator') === true
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
  .requiredOption('--email <email>', 'the account')
  .option('--off', 'take the role away')
  .action(
    command(async (rt, _c, a) => {
      const operator = flag(a, 'off') !== true
      const u = await setOperatorRole(rt.ctx, cliActor, { email: a.email!, operator })
      return { json: userJson(u), text: `${u.email} ${u.operator ? 'is an operator' : 'is not an operator'}` }
    }),
  )
users
  .command('suspend')
  .description('no sign-in, sessions end, and every app of theirs is suspended with the account')
  .requiredOption('--email <email>', 'the account')
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
  .description('let a suspended account sign in again, with the apps suspended with it')
  .requiredOption('--email <email>', 'the account')
  .action(
    command(async (rt, _c, a) => {
      const r = await unsuspendAccount(rt.ctx, cliActor, { email: a.email! })
      return { json: { user: userJson(r.user), apps: r.apps.map(appJson) }, text: `${r.user.email} active again, with ${r.apps.length} app(s)` }
    }),
  )

const apps = program.command('apps').description('OAuth clients')
apps
  .command('create')
  .description('register an app; prints its client_id and client_secret (shown only this once)')
  .requiredOption('--name <name>', "the app's name, as people see it")
  .addOption(new Option('--kind <kind>', "private: one tenant's own integration; public: a marketplace app").choices(['private', 'public']).makeOptionMandatory())
  .option('--tenant <id>', 'the tenant a private app belongs to')
  .addOption(new Option('--environment <env>', "sandbox or live (default: the tenant's, else sandbox)").choices(['sandbox', 'live']))
  .option('--scopes <scopes>', scopesHelp('space-separated scopes the app may ask for (default "api")'))
  .option('--token-ttl <seconds>', 'access-token lifetime (default 28000 public, 3600 private)')
  .option('--install-url <url>', 'where marketplace Install sends a customer (https in live)')
  .option('--redirect-uri <uri...>', 'redirect URIs, exact match: https, or http to 127.0.0.1, [::1] or localhost')
  .option('--contact-email <email>', "the partner's address for notices")
  .option('--data-api-url <url>', 'where Data API events are delivered (https in live)')
  .option('--listed', 'list it in the marketplace (a public app with an install URL)')
  .option('--logo-url <url>', "the marketplace card's logo, an https image")
  .option('--short-description <text>', 'one line for the marketplace card (at most 140 characters)')
  .option('--category <name...>', `up to three marketplace categories: ${appCategories.join(', ')}`)
  .option('--publisher <name>', 'who publishes it, as the marketplace shows it (default: the contact email)')
  .option('--support-url <url>', 'where customers get help, https')
  .option('--privacy-policy-url <url>', "what the app does with a customer's data, https")
  .action(
    command(async (rt, _c, a) => {
      // Commander collects a variadic option into an array; every other option is one string.
      const redirectUris = (a as Record<string, unknown>).redirectUri
      const created = await createApp(rt.ctx, cliActor, {
        ...appInput({
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
        ...listingFields(a),
      })
      const sandbox = created.sandboxTenant ? { sandbox_target_id: created.sandboxTenant.id } : {}
      return {
        json: { ...appJson(created.app), ...(created.clientSecret === null ? {} : { client_secret: created.clientSecret }), ...sandbox },
        text: [
          `app ${created.app.name} (${created.app.kind}, ${created.app.environment})`,
          `client_id     ${created.app.clientId}`,
          ...(created.clientSecret === null ? ['a public client: no secret'] : [`client_secret ${created.clientSecret}`]),
          ...(created.sandboxTenant ? [`sandbox target_id ${created.sandboxTenant.id}`] : []),
          ...(created.clientSecret === null ? [] : ['The client secret is shown only this once: store it now.']),
        ].join('\n'),
      }
    }),
  )
/** One line per app, with its review and suspension where they matter. */
const appLine = (a: App): string =>
  [a.clientId, a.kind.padEnd(7), a.environment.padEnd(7), a.name, a.review !== 'approved' ? `[${a.review}]` : '', a.suspendedAt !== null ? '[suspended]' : '']
    .filter(Boolean)
    .join('  ')

apps
  .command('list')
  .description('apps, oldest first, with their review and suspension; each filter narrows')
  .option('--tenant <id>', 'only apps of (or testing on) this tenant')
  .addOption(new Option('--kind <kind>', 'only private or only public apps').choices(['private', 'public']))
  .addOption(new Option('--environment <env>', 'only sandbox or only live apps').choices(['sandbox', 'live']))
  .addOption(new Option('--review <state>', 'only apps in this review state').choices(['approved', 'pending', 'rejected']))
  .addOption(new Option('--state <state>', 'only active or only suspended apps').choices(['active', 'suspended']))
  .option('--owner <email>', "only this partner's apps")
  .option('--query <text>', 'part of a name or client_id')
  .option('--limit <n>', 'apps to show, at most 500', '500')
  .action(
    command(async (rt, _c, a) => {
      const tenant = await optionalTenant(rt, a.tenant)
      const owner = a.owner === undefined ? undefined : await rt.storage.getUserByEmail(a.owner.trim().toLowerCase())
      if (a.owner !== undefined && !owner) throw notFound(`no user with email ${a.owner}`)
      const list = await rt.storage.listApps({
        limit: limitOption(a.limit, 500),
        ...(tenant ? { tenantId: tenant.id } : {}),
        ...(owner ? { ownerUserId: owner.id } : {}),
        ...(a.kind === 'private' || a.kind === 'public' ? { kind: a.kind } : {}),
        ...(a.environment === 'sandbox' || a.environment === 'live' ? { environment: a.environment } : {}),
        ...(a.review === 'approved' || a.review === 'pending' || a.review === 'rejected' ? { review: a.review } : {}),
        ...(a.state ? { suspended: a.state === 'suspended' } : {}),
        ...(a.query ? { query: a.query } : {}),
      })
      return { json: list.map(appJson), text: list.map(appLine).join('\n') || 'no apps' }
    }),
  )
apps
  .command('update')
  .description("change an app's settings; an operator's change takes effect as made, with no review")
  .argument('<client_id>', 'the app to change')
  .option('--name <name>', 'a new name')
  .option('--description <text>', 'what the app does, for the marketplace (at most 2000 characters)')
  .option('--scopes <scopes>', scopesHelp('the scopes it may ask for, space-separated; grants keep theirs'))
  .option('--token-ttl <seconds>', 'access-token lifetime, or "default" for the server\'s')
  .option('--install-url <url>', 'where marketplace Install sends a customer; "" removes it')
  .option('--redirect-uri <uri...>', 'replaces the redirect URIs; "" removes them all')
  .option('--contact-email <email>', 'the partner\'s address for notices; "" removes it')
  .option('--data-api-url <url>', 'where Data API events are delivered; "" removes it')
  .option('--listed', 'list it in the marketplace (a public app with an install URL)')
  .option('--no-listed', 'take it out of the marketplace')
  .option('--logo-url <url>', 'the marketplace card\'s logo, an https image; "" removes it')
  .option('--short-description <text>', 'one line for the marketplace card (at most 140 characters)')
  .option('--category <name...>', `replaces the marketplace categories (up to three): ${appCategories.join(', ')}; "" removes them`)
  .option('--publisher <name>', 'who publishes it, as the marketplace shows it; "" shows the contact email')
  .option('--support-url <url>', 'where customers get help, https; "" removes it')
  .option('--privacy-policy-url <url>', 'what the app does with a customer\'s data, https; "" removes it')
  .action(
    command(async (rt, _c, a, [clientId]) => {
      const fields = appUpdate(a)
      if (Object.keys(fields).length === 0) throw invalid('nothing to change: give at least one option (fieldgate apps update --help lists them)')
      const app = await updateApp(rt.ctx, cliActor, { clientId: clientId!, fields })
      return { json: appJson(app), text: `${app.name} (${app.clientId}) updated\n${appLine(app)}` }
    }),
  )
apps
  .command('delete')
  .description('delete an app: its secrets and grants go, and every token it holds stops working at once')
  .argument('<client_id>', 'the app to delete')
  .action(
    command(async (rt, _c, _a, [clientId]) => {
      const { app, grantIds } = await deleteApp(rt.ctx, cliActor, { clientId: clientId! })
      return {
        json: { deleted: true, client_id: app.clientId, grant_ids: grantIds },
        text: `${app.name} (${app.clientId}) deleted, with ${grantIds.length} grant(s) and their tokens`,
      }
    }),
  )
apps
  .command('review')
  .description('what partners published and changed, waiting for an operator')
  .command('list')
  .description('the apps waiting for review, oldest first: new, or the fields they change')
  .action(
    command(async (rt) => {
      const list = await listReviewQueue(rt.ctx, cliActor, { limit: 500 })
      const line = (a: App) => `${appLine(a)}  ${a.approvedAt === null ? 'new' : `changes ${Object.keys(a.proposed ?? {}).join(',')}`}`
      return { json: list.map(appJson), text: list.map(line).join('\n') || 'nothing waits for review' }
    }),
  )
apps
  .command('approve')
  .description('approve what waits for review: a new app goes live, a change takes effect')
  .argument('<client_id>', 'the app')
  .option('--reason <text>', 'a note to the partner')
  .action(
    command(async (rt, _c, a, [clientId]) => {
      const app = await approveApp(rt.ctx, cliActor, { clientId: clientId!, ...(a.reason ? { reason: a.reason } : {}) })
      return { json: appJson(app), text: `${app.name} (${app.clientId}) approved` }
    }),
  )
for (const [verb, run, done, about] of [
  ['reject', rejectApp, 'rejected; the partner was told why', 'turn down what waits for review; the partner is told why'],
  ['suspend', suspendApp, 'suspended: its tokens stop working now, on every instance', 'refuse every token of the app at once, on every instance'],
] as const) {
  apps
    .command(verb)
    .description(about)
    .argument('<client_id>', 'the app')
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
  .description('let a suspended app get and use tokens again')
  .argument('<client_id>', 'the app')
  .action(
    command(async (rt, _c, _a, [clientId]) => {
      const app = await unsuspendApp(rt.ctx, cliActor, { clientId: clientId! })
      return { json: appJson(app), text: `${app.name} (${app.clientId}) is no longer suspended` }
    }),
  )
apps
  .command('rotate-secret')
  .description('a new client secret now, shown once; the old one works for a grace period')
  .argument('<client_id>', 'the app')
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
  .description('connect an app to a tenant (install it there)')
  .requiredOption('--app <client_id>', 'the app')
  .requiredOption('--tenant <id>', 'the tenant')
  .option('--scopes <scopes>', "space-separated, some of the app's (default: all of them)")
  .action(
    command(async (rt, _c, a) => {
      const g = await createGrant(rt.ctx, cliActor, { clientId: a.app!, tenantId: a.tenant!, ...(a.scopes !== undefined ? { scopes: a.scopes } : {}) })
      return { json: grantJson(g), text: `grant ${g.id} (${g.scopes.join(' ')})` }
    }),
  )
grants
  .command('revoke')
  .description('disconnect: the grant ends and its tokens stop working now')
  .argument('<id>', 'the grant')
  .action(
    command(async (rt, _c, _a, [id]) => {
      const g = await revokeGrant(rt.ctx, cliActor, { grantId: id! })
      return { json: grantJson(g), text: `grant ${g.id} revoked: its tokens stop working now` }
    }),
  )
grants
  .command('list')
  .description('grants, with their status and scopes')
  .option('--tenant <id>', "only this tenant's grants")
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
keys
  .command('list')
  .description('the signing keys: next, active and retiring')
  .action(
    command(async (rt) => {
      const list = await rt.storage.listSigningKeys()
      return { json: list.map(keyJson), text: list.map(keyLine).join('\n') }
    }),
  )

function limitOption(value: string | undefined, max = 10_000): number {
  const limit = Number(value)
  if (!Number.isInteger(limit) || limit < 1 || limit > max) throw invalid(`--limit must be a whole number from 1 to ${max}`)
  return limit
}

/** A --x / --no-x pair: true, false, or undefined when neither was given. */
function flag(opts: Record<string, unknown>, name: string): boolean | undefined {
  const value = opts[name]
  return typeof value === 'boolean' ? value : undefined
}

/** The tenant a `--tenant <id>` filter names, if given; an unknown one is an error, not an empty list. */
async function optionalTenant(rt: Runtime, id: string | undefined) {
  if (id === undefined) return undefined
  const tenant = isLookupKey(id) ? await rt.storage.getTenant(id) : undefined
  if (!tenant) throw notFound(`no tenant ${id}`)
  return tenant
}

/** The help of a --scopes option, with the scopes an app may register (core's catalogue). */
function scopesHelp(text: string): string {
  return `${text}: ${knownScopes().join(', ')}`
}

/** `apps update`'s options as the operation's fields: only what was given; "" removes an optional URL or address. */
function appUpdate(a: Record<string, unknown>): AppFields {
  const text = (name: string): string | undefined => (typeof a[name] === 'string' ? a[name] : undefined)
  const orNull = (name: string): { value: string | null } | undefined => {
    const value = text(name)
    return value === undefined ? undefined : { value: value.trim() === '' ? null : value }
  }
  const [installUrl, contactEmail, dataApiUrl] = [orNull('installUrl'), orNull('contactEmail'), orNull('dataApiUrl')]
  const ttl = text('tokenTtl')
  const redirectUris = a.redirectUri
  const listed = flag(a, 'listed')
  return {
    ...(text('name') !== undefined ? { name: text('name') } : {}),
    ...(text('description') !== undefined ? { description: text('description') } : {}),
    ...(text('scopes') !== undefined ? { scopes: text('scopes') } : {}),
    ...(ttl !== undefined ? { tokenTtl: ttl === 'default' ? null : Number(ttl) } : {}),
    ...(installUrl ? { installUrl: installUrl.value } : {}),
    ...(contactEmail ? { contactEmail: contactEmail.value } : {}),
    ...(dataApiUrl ? { dataApiUrl: dataApiUrl.value } : {}),
    ...(Array.isArray(redirectUris) ? { redirectUris: redirectUris.filter((u): u is string => typeof u === 'string' && u.trim() !== '') } : {}),
    ...(listed !== undefined ? { listed } : {}),
    ...listingFields(a),
  }
}

/** The marketplace listing's options, as apps create and apps update take them; "" removes one. */
function listingFields(a: Record<string, unknown>): AppFields {
  const text = (name: string): string | undefined => (typeof a[name] === 'string' ? a[name] : undefined)
  const orNull = (name: string): string | null | undefined => {
    const value = text(name)
    return value === undefined ? undefined : value.trim() === '' ? null : value
  }
  const categories = a.category
  const fields: AppFields = {}
  const [logoUrl, publisher, supportUrl, privacyPolicyUrl] = [orNull('logoUrl'), orNull('publisher'), orNull('supportUrl'), orNull('privacyPolicyUrl')]
  if (logoUrl !== undefined) fields.logoUrl = logoUrl
  if (publisher !== undefined) fields.publisher = publisher
  if (supportUrl !== undefined) fields.supportUrl = supportUrl
  if (privacyPolicyUrl !== undefined) fields.privacyPolicyUrl = privacyPolicyUrl
  if (text('shortDescription') !== undefined) fields.shortDescription = text('shortDescription')
  if (Array.isArray(categories)) fields.categories = categories.filter((c): c is string => typeof c === 'string' && c.trim() !== '')
  return fields
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
  .description('audit entries, newest first')
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
  .description('mail, newest first; local messages with their text')
  .addOption(new Option('--state <state>', 'only mail in this state').choices(['local', 'pending', 'sent', 'failed']))
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
  .description('Data API events, newest first, with their delivery attempts')
  .option('--app <client_id>', "only this app's events")
  .addOption(new Option('--state <state>', 'only events in this state').choices(['pending', 'delivered', 'failed']))
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
  .argument('<id>', 'the event')
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

/** Commander's error ids as the CLI's stable codes; `commander.help` with a non-zero exit is a group without its command. */
const usageCodes: Readonly<Record<string, string>> = {
  'commander.unknownCommand': 'unknown_command',
  'commander.unknownOption': 'unknown_option',
  'commander.missingMandatoryOptionValue': 'missing_option',
  'commander.optionMissingArgument': 'missing_option_value',
  'commander.missingArgument': 'missing_argument',
  'commander.excessArguments': 'too_many_arguments',
  'commander.invalidArgument': 'invalid_argument',
  'commander.conflictingOption': 'conflicting_option',
  'commander.help': 'missing_command',
}

/** `fieldgate apps` alone: which commands it takes. */
function missingCommand(args: string[]): string {
  let cmd = program
  const path = ['fieldgate']
  for (const arg of args.filter((a) => !a.startsWith('-'))) {
    const sub = cmd.commands.find((c) => c.name() === arg)
    if (!sub) break
    cmd = sub
    path.push(arg)
  }
  return `${path.join(' ')} needs a command: ${cmd.commands.map((c) => c.name()).join(', ')} (${path.join(' ')} --help)`
}

/** What went wrong, as a stable code and a message for a person: what `fail` prints. */
function describeError(err: unknown): { error: string; message: string } {
  if (err instanceof CommanderError) {
    const message = err.code === 'commander.help' ? missingCommand(process.argv.slice(2)) : err.message.replace(/^error: /, '')
    return { error: usageCodes[err.code] ?? 'usage', message }
  }
  if (err instanceof OperationError) return { error: err.code, message: err.message }
  if (err instanceof ConfigError) return { error: 'invalid_setting', message: err.message }
  if (err instanceof DataDirBusyError) return { error: 'store_busy', message: err.message }
  if (isStoreUnavailable(err)) return { error: 'store_unavailable', message: `the store cannot be reached: ${err instanceof Error ? err.message : String(err)}` }
  return { error: 'failed', message: err instanceof Error ? err.message : String(err) }
}

/**
 * Every error, exit code 1 and no stack trace: under --json one JSON document on stderr (stdout carries
 * only results), otherwise one line for a person (Commander has already printed its own, with the help).
 */
function fail(err: unknown): void {
  if (err instanceof CommanderError && err.exitCode === 0) return // --help, --version
  process.exitCode = 1
  const { error, message } = describeError(err)
  if (jsonMode) process.stderr.write(`${JSON.stringify({ error, message })}\n`)
  else if (!(err instanceof CommanderError)) process.stderr.write(`fieldgate: ${message}\n`)
}

program.parseAsync().catch(fail)
