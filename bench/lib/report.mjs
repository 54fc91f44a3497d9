// The reports of bench/run.mjs: the JSON object with every figure (what --json prints and latest.json
// holds; its shape is in bench/README.md) and the Markdown made from it, for the two-core run and for
// the pinned one. Sections a run left out (--only) are absent from both.
import { figure } from './measure.mjs'

/** Issue 17's targets for the pinned run. */
export const TARGETS = Object.freeze({
  fieldgateOverBare: 0.9,
  fieldgateOverOidcProvider: 2,
  p99Ms: 30,
  eddsaOverRs256: 4,
  validationPerS: 25_000,
  opaquePerS: 12_200,
  dispatchPerS: 3_000,
  alertsPostPerS: 1_500,
  randomOverOne: 0.9,
  rssMb: 300,
})
/** The two-core run's targets (issue 2). */
const TWO_CORE_TARGETS = Object.freeze({ ceilingRatio: 0.75, peerRatio: 1.5, p99Ms: 40, validationRps: 12_000 })

const fmtInt = (n) => Math.round(n).toLocaleString('en-US')
const fmtMs = (n) => (Number.isInteger(n) ? `${n}` : n.toFixed(1))
const fmtRatio = (n) => n.toFixed(2)
const fmtPct = (share) => (Number.isFinite(share) ? `${Math.round(share * 100)} %` : '')
const verdict = (ok) => (ok ? 'met' : '**not met**')
const ratio = (a, b) => (a !== undefined && b ? a / b : undefined)

function header(env, title, load) {
  return [
    `# ${title}`,
    '',
    `- Date: ${env.date}`,
    `- Command: \`${env.command}\``,
    `- Node ${env.node}; CPU ${env.cpu}; ${env.os}; ${env.memory}; load average at start ${env.loadAtStart}`,
    `- Fieldgate ${env.versions.fieldgate} at ${env.commit}; oidc-provider ${env.versions.oidcProvider}; autocannon ${env.versions.autocannon}; jose ${env.versions.jose}`,
    `- Load: ${load}`,
    '',
  ]
}

// ---------------------------------------------------------------------------------------------------
// Pinned run (issue 17)

/** A token-endpoint measurement in the JSON's names, with what its first token was. */
const tokenFigure = (m) => ({
  ...figure(m, 'tokens_per_s'),
  ...(m.engine ? { engine: m.engine } : {}),
  alg: m.alg ?? m.jwt.alg,
  header_alg: m.jwt.alg,
  token_bytes: m.jwt.bytes,
  claims: m.jwt.claims,
  ...(m.redis ? { redis: true } : {}),
  ...(m.rateLimit ? { rate_limits: { token_per_client: m.rateLimit.tokenPerClient, token_per_address: m.rateLimit.tokenPerAddress, redis_keys: m.rateLimit.redisKeys } } : {}),
})

const scaleFigure = (s) => ({
  engine: s.engine,
  installs: s.installs,
  seed_s: s.seed.seconds,
  store_mb: s.seed.bytes / 2 ** 20,
  changes_written: s.seed.changesAfter - s.seed.changesBefore,
  start_s: s.startSeconds,
  one: figure(s.one, 'tokens_per_s'),
  random: figure(s.random, 'tokens_per_s'),
  random_over_one: s.random.rps / s.one.rps,
  rss_mb: s.peakMiB,
  rss_hwm_mb: s.hwmMiB,
  rss_at_start_mb: s.rssAtStartMiB,
  rss_after_one_mb: s.rssAfterOneMiB,
})

/** Every figure of a pinned run, named as bench/README.md documents. */
export function pinnedJson(env, settings, r) {
  const j = { kind: 'fieldgate-bench', mode: 'pinned', env, settings }
  const pinned = {}
  if (r.ceiling) {
    pinned.ceiling_per_s = r.ceiling.RS256.rate
    pinned.ceiling = {
      rs256_per_s: r.ceiling.RS256.rate,
      es256_per_s: r.ceiling.ES256.rate,
      eddsa_per_s: r.ceiling.EdDSA.rate,
      // The signing process's CPU share (of one core) and each core's busy share, per algorithm.
      cpu: Object.fromEntries(Object.entries(r.ceiling).map(([alg, c]) => [alg, { server_cpu_share: c.cpuShare, cores_busy: c.cores.map((k) => k.busy + k.steal) }])),
    }
  }
  if (r.fieldgate) {
    // The SQLite figure when it ran (the targets' store), else PostgreSQL's; each engine in `engines`.
    const primary = r.fieldgate.sqlite ?? r.fieldgate.postgres
    pinned.fieldgate = tokenFigure(primary)
    pinned.engines = Object.fromEntries(Object.entries(r.fieldgate).map(([engine, m]) => [engine, tokenFigure(m)]))
    pinned.oidc_provider = { ...tokenFigure(r.oidcProvider), warnings: r.oidcProvider.warnings, server_errors: r.oidcProvider.serverErrors }
    pinned.bare_signer = tokenFigure(r.bare)
  }
  if (Object.keys(pinned).length) j.pinned = pinned
  if (r.algs) {
    j.eddsa = {
      ...(r.algs.EdDSA ? { fieldgate: tokenFigure(r.algs.EdDSA) } : { skipped: true }),
      bare_signer: tokenFigure(r.bareEdDSA),
      ...(r.ceiling ? { ceiling_per_s: r.ceiling.EdDSA.rate } : {}),
    }
    j.es256 = { ...(r.algs.ES256 ? { fieldgate: tokenFigure(r.algs.ES256) } : { skipped: true }), ...(r.ceiling ? { ceiling_per_s: r.ceiling.ES256.rate } : {}) }
  }
  if (r.validation) j.validation = { ...figure(r.validation), response_bytes: r.validation.responseBytes, baseline: figure(r.validation.baseline) }
  if (r.resource) {
    j.opaque = figure(r.resource.withOpaque)
    j.alerts_get_jwt = figure(r.resource.withJwt)
  }
  if (r.alertsPost) j.alerts_post = figure(r.alertsPost)
  if (r.dispatch) j.dispatch = dispatchFigure(r.dispatch)
  if (r.scale?.length) {
    const runs = r.scale.map(scaleFigure)
    // Per engine, its largest run; the top level repeats SQLite's (else PostgreSQL's).
    const largest = (engine) => runs.filter((s) => s.engine === engine).sort((a, b) => b.installs - a.installs)[0]
    const engines = Object.fromEntries(['sqlite', 'postgres'].filter(largest).map((e) => [e, largest(e)]))
    j.scale = { ...(engines.sqlite ?? engines.postgres), engines, runs }
  }
  const fg = j.pinned?.fieldgate?.tokens_per_s
  const ratios = {
    fieldgate_over_bare: ratio(fg, j.pinned?.bare_signer?.tokens_per_s),
    fieldgate_over_oidc_provider: ratio(fg, j.pinned?.oidc_provider?.tokens_per_s),
    eddsa_over_rs256: ratio(j.eddsa?.fieldgate?.tokens_per_s, fg),
    es256_over_rs256: ratio(j.es256?.fieldgate?.tokens_per_s, fg),
    fieldgate_over_ceiling: ratio(fg, j.pinned?.ceiling_per_s),
    bare_over_ceiling: ratio(j.pinned?.bare_signer?.tokens_per_s, j.pinned?.ceiling_per_s),
    bare_eddsa_over_bare: ratio(j.eddsa?.bare_signer?.tokens_per_s, j.pinned?.bare_signer?.tokens_per_s),
    ceiling_eddsa_over_rs256: ratio(j.pinned?.ceiling?.eddsa_per_s, j.pinned?.ceiling_per_s),
    postgres_over_sqlite: ratio(j.pinned?.engines?.postgres?.tokens_per_s, j.pinned?.engines?.sqlite?.tokens_per_s),
  }
  j.ratios = Object.fromEntries(Object.entries(ratios).filter(([, v]) => v !== undefined))
  j.targets = pinnedTargets(j)
  j.skipped = r.skipped
  return j
}

/** Each target with its value (null when its section did not run) and whether it was met. */
function pinnedTargets(j) {
  const t = []
  const add = (check, value, op, target, unit = '') =>
    t.push({ check, value: value ?? null, op, target, unit, met: value === undefined ? null : op === '≥' ? value >= target : value < target })
  add('Fieldgate / bare node:http signer, RS256', j.ratios.fieldgate_over_bare, '≥', TARGETS.fieldgateOverBare)
  add('Fieldgate / oidc-provider', j.ratios.fieldgate_over_oidc_provider, '≥', TARGETS.fieldgateOverOidcProvider)
  for (const [engine, m] of Object.entries(j.pinned?.engines ?? { sqlite: undefined }))
    add(`Fieldgate token endpoint p99, ${engineName(engine)}`, m?.p99_ms, '<', TARGETS.p99Ms, 'ms')
  add('Fieldgate EdDSA / RS256 tokens', j.ratios.eddsa_over_rs256, '≥', TARGETS.eddsaOverRs256)
  add('Validation, `GET /api/rest/v2/workorders`', j.validation?.req_per_s, '≥', TARGETS.validationPerS, 'req/s')
  add('`GET /v1/alerts` with an opaque token', j.opaque?.req_per_s, '≥', TARGETS.opaquePerS, 'req/s')
  add('Data API dispatch', j.dispatch?.events_per_s, '≥', TARGETS.dispatchPerS, 'events/s')
  add('`POST /v1/alerts`, SQLite', j.alerts_post?.req_per_s, '≥', TARGETS.alertsPostPerS, 'req/s')
  for (const [engine, s] of Object.entries(j.scale?.engines ?? { sqlite: undefined })) {
    const at = s ? `, ${fmtInt(s.installs)} installs` : ''
    add(`Scale, random tenants / one tenant, ${engineName(engine)}${at}`, s?.random_over_one, '≥', TARGETS.randomOverOne)
    add(`Scale, server peak RSS, ${engineName(engine)}${at}`, s?.rss_mb, '<', TARGETS.rssMb, 'MiB')
  }
  return t
}

/** How much of CPU 0 others may use during a measurement before the report says the core was shared. */
const CROWDED = 0.15

/** The measurements during which CPU 0 was busier than the server made it: [name, others' share]. */
function contended(j) {
  const named = [
    ...Object.entries(j.pinned?.ceiling?.cpu ?? {}).map(([alg, m]) => [`signing ceiling ${alg}`, m]),
    ...Object.entries(j.pinned?.engines ?? {}).map(([e, m]) => [`Fieldgate RS256 ${engineName(e)}`, m]),
    ['oidc-provider', j.pinned?.oidc_provider],
    ['bare signer RS256', j.pinned?.bare_signer],
    ['Fieldgate EdDSA', j.eddsa?.fieldgate],
    ['bare signer EdDSA', j.eddsa?.bare_signer],
    ['Fieldgate ES256', j.es256?.fieldgate],
    ['validation', j.validation],
    ['HTTP baseline', j.validation?.baseline],
    ['GET /v1/alerts JWT', j.alerts_get_jwt],
    ['GET /v1/alerts opaque', j.opaque],
    ['POST /v1/alerts', j.alerts_post],
    ...(j.scale?.runs ?? []).flatMap((x) => [
      [`scale ${engineName(x.engine)} ${fmtInt(x.installs)} one tenant`, x.one],
      [`scale ${engineName(x.engine)} ${fmtInt(x.installs)} random`, x.random],
    ]),
  ]
  return named.filter(([, m]) => m?.cores_busy && m.cores_busy[0] - m.server_cpu_share > CROWDED).map(([name, m]) => [name, m.cores_busy[0] - m.server_cpu_share])
}

const engineName = (engine) => (engine === 'postgres' ? 'PostgreSQL + Redis' : 'SQLite')

/** The pinned run's Markdown, from its JSON. */
export function pinnedReport(j) {
  const { env, settings: s } = j
  const L = header(
    env,
    'Fieldgate benchmark, pinned: one core per server',
    `autocannon ${s.connections} connections, pipelining ${s.pipelining}, ${s.warmup_s} s warm-up discarded, then ${s.duration_s} s measured; 127.0.0.1; one server at a time; only 2xx responses counted`,
  )
  L.push(
    `- Pinning: every server under test is one process under \`taskset -c ${s.server_cpus}\` (\`fieldgate serve --workers 1\`, the peers with \`BENCH_WORKERS=1\`); this process, the load generator, runs on CPU ${s.generator_cpus}; the signing ceiling is one worker thread in a process on CPU ${s.server_cpus}. PostgreSQL and Redis, system services, are not pinned.`,
    '',
  )
  const row = (name, m, unit = 'tokens_per_s') =>
    `| ${name} | ${fmtInt(m[unit])} | ${fmtMs(m.p50_ms)} ms | ${fmtMs(m.p99_ms)} ms | ${fmtPct(m.server_cpu_share)} | ${fmtPct(m.cores_busy?.[0])} |`
  const tokens = []
  for (const [engine, m] of Object.entries(j.pinned?.engines ?? {})) tokens.push(row(`Fieldgate, RS256, ${engineName(engine)}`, m))
  if (j.eddsa?.fieldgate) tokens.push(row('Fieldgate, EdDSA (Ed25519), SQLite', j.eddsa.fieldgate))
  if (j.es256?.fieldgate) tokens.push(row('Fieldgate, ES256, SQLite', j.es256.fieldgate))
  if (j.pinned?.oidc_provider) tokens.push(row(`oidc-provider ${env.versions.oidcProvider}, RS256, in-memory adapter`, j.pinned.oidc_provider))
  if (j.pinned?.bare_signer) tokens.push(row('Reference: bare node:http that only signs, RS256 (`bench/peers/bare-signer.mjs`)', j.pinned.bare_signer))
  if (j.eddsa?.bare_signer) tokens.push(row('Reference: bare node:http signer, EdDSA', j.eddsa.bare_signer))
  if (tokens.length) {
    L.push('## Pinned: client-credentials token endpoint, one core', '')
    L.push('| Server | tokens/s | p50 | p99 | server CPU | CPU 0 busy |', '|---|---:|---:|---:|---:|---:|', ...tokens, '')
    L.push(
      "Server CPU is the server process group's CPU time over the measured seconds (1 core = 100 %, `/proc/<pid>/stat`); CPU 0 busy is everyone's use of that core (`/proc/stat`): more than the server means something else ran there.",
      '',
    )
  }
  if (j.pinned?.ceiling) {
    const c = j.pinned.ceiling
    L.push('## Signing ceiling, one core (node:crypto `sign()`, one worker thread on CPU 0)', '')
    L.push('| Algorithm | signatures/s |', '|---|---:|')
    L.push(`| RS256 (RSA 2048): **the ceiling** | ${fmtInt(c.rs256_per_s)} |`, `| ES256 (P-256) | ${fmtInt(c.es256_per_s)} |`, `| EdDSA (Ed25519) | ${fmtInt(c.eddsa_per_s)} |`, '')
  }
  const api = []
  if (j.validation) {
    api.push(row('Validation: `GET /api/rest/v2/workorders` with a Bearer JWT', j.validation, 'req_per_s'))
    api.push(row('Same process, `GET /.well-known/oauth-authorization-server` (reference: the HTTP stack alone)', j.validation.baseline, 'req_per_s'))
  }
  if (j.alerts_get_jwt) api.push(row('`GET /v1/alerts` (5 records) with a client-credentials JWT', j.alerts_get_jwt, 'req_per_s'))
  if (j.opaque) api.push(row('`GET /v1/alerts` (5 records) with an opaque connection token', j.opaque, 'req_per_s'))
  if (j.alerts_post) api.push(row('`POST /v1/alerts`, SQLite, a record per request (no Data API URL: no event)', j.alerts_post, 'req_per_s'))
  if (api.length) {
    L.push('## Pinned: protected API and resource API, one core', '')
    L.push('| Measurement | req/s | p50 | p99 | server CPU | CPU 0 busy |', '|---|---:|---:|---:|---:|---:|', ...api, '')
  }
  if (j.dispatch) {
    L.push('## Pinned: Data API dispatch', '')
    L.push(
      `A backlog of ${fmtInt(j.dispatch.events)} signed events, written through \`POST /v1/alerts\` (10 connections, ${fmtInt(j.dispatch.writes_per_s)} req/s, record and event in one transaction) while the receiver was down, delivered at **${fmtInt(j.dispatch.events_per_s)} events/s** (${j.dispatch.seconds.toFixed(2)} s, first to last delivery)${j.dispatch.server_cpu_share === undefined ? '' : `, the server's core ${fmtPct(j.dispatch.server_cpu_share)} busy, ${fmtInt(j.dispatch.server_cpu_us_per_event)} µs of its CPU per event`}.`,
      '',
    )
  }
  if (j.scale) {
    L.push('## Scale: client-credentials tokens among many installs', '')
    L.push('| Store | installs | seeded in | store | start | one tenant, tokens/s (p99) | random tenants, tokens/s (p99) | random / one | RSS serving | peak RSS | VmHWM |')
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const x of j.scale.runs) {
      L.push(
        `| ${engineName(x.engine)} | ${fmtInt(x.installs)} | ${x.seed_s < 10 ? x.seed_s.toFixed(2) : x.seed_s.toFixed(1)} s | ${fmtInt(x.store_mb)} MiB | ${x.start_s.toFixed(1)} s | ${fmtInt(x.one.tokens_per_s)} (${fmtMs(x.one.p99_ms)} ms) | ${fmtInt(x.random.tokens_per_s)} (${fmtMs(x.random.p99_ms)} ms) | ${fmtRatio(x.random_over_one)} | ${fmtInt(x.rss_at_start_mb)} MiB | ${fmtInt(x.rss_mb)} MiB | ${fmtInt(x.rss_hwm_mb)} MiB |`,
      )
    }
    L.push(
      '',
      'One public sandbox app made with `fieldgate apps create --kind public`, then N sandbox tenants and N active grants of it (one per tenant) inserted in one transaction (`bench/lib/seed-installs.mjs`; nothing written to the change feed: every run checks the `changes` count is unchanged). "start" is from `fieldgate serve` to its first token. Requests are FieldEdge JSON (`client_id`, `client_secret`, `target_id`, `grant_type`), one tenant throughout, then a random seeded tenant per request. RSS: `/proc/<pid>/status` VmRSS once the server answered, before any load ("RSS serving"), then every 250 ms during the random run and 1 s after ("peak RSS", what the target reads); VmHWM is the kernel\'s peak since start, start-up included.',
      '',
    )
  }
  L.push('## Targets', '', '| Check | Value | Target | |', '|---|---:|---:|---|')
  for (const t of j.targets) {
    const unit = t.unit ? ` ${t.unit}` : ''
    const value = t.value === null ? 'not run' : t.unit ? `${t.unit === 'ms' ? fmtMs(t.value) : fmtInt(t.value)}${unit}` : fmtRatio(t.value)
    L.push(`| ${t.check} | ${value} | ${t.op} ${t.unit ? fmtInt(t.target) : t.target}${unit} | ${t.met === null ? '' : verdict(t.met)} |`)
  }
  L.push('')
  const ratioRows = [
    ['Fieldgate / signing ceiling, RS256 on one core', j.ratios.fieldgate_over_ceiling],
    ['Bare signer / signing ceiling (what any Node.js server can reach here)', j.ratios.bare_over_ceiling],
    ['Fieldgate ES256 / RS256', j.ratios.es256_over_rs256],
    ['Bare signer EdDSA / RS256', j.ratios.bare_eddsa_over_bare],
    ['Signing ceiling EdDSA / RS256', j.ratios.ceiling_eddsa_over_rs256],
    ['Fieldgate PostgreSQL + Redis / SQLite', j.ratios.postgres_over_sqlite],
  ].filter(([, v]) => v !== undefined)
  if (ratioRows.length) L.push('| Reference ratio (no target) | |', '|---|---:|', ...ratioRows.map(([k, v]) => `| ${k} | ${fmtRatio(v)} |`), '')
  L.push('## Notes', '')
  const pg = j.pinned?.engines?.postgres
  L.push('- SQLite runs: a fresh store in a temporary FIELDGATE_DATA_DIR per server, rate limits and overload shedding off (`NO_RATE_LIMITS`, lib/children.mjs).')
  if (pg || j.scale?.engines?.postgres)
    L.push(
      `- PostgreSQL runs: a fresh schema per server (\`options=-c search_path=…\`, dropped at the end) with REDIS_URL and the default rate limits, except the two token limits the bench's single client at one address would hit at once (300 a minute per client, 600 per address), raised to ${fmtInt(1e9)} a minute: both still count every request in Redis${pg?.rate_limits ? ` (${fmtInt(pg.rate_limits.redis_keys)} counter keys seen after the run)` : ''}. Overload shedding is off, as in the SQLite runs.`,
    )
  if (j.pinned?.fieldgate)
    L.push(
      `- Token requests: form-encoded \`grant_type=client_credentials&client_id=…&client_secret=…&scope=api\` to every server. Access tokens checked before each run: Fieldgate ${j.pinned.fieldgate.claims} claims, ${j.pinned.fieldgate.token_bytes} bytes, header alg ${j.pinned.fieldgate.header_alg}${j.eddsa?.fieldgate ? `; EdDSA run header alg ${j.eddsa.fieldgate.header_alg}` : ''}${j.es256?.fieldgate ? `; ES256 run ${j.es256.fieldgate.header_alg}` : ''}.`,
    )
  if (j.pinned?.oidc_provider?.warnings?.length) L.push(`- oidc-provider printed: ${j.pinned.oidc_provider.warnings.map((w) => `"${w}"`).join('; ')}`)
  for (const s of j.skipped ?? []) L.push(`- **Skipped** (${s.section}, ${s.alg}): ${s.reason}`)
  const crowded = contended(j)
  if (crowded.length)
    L.push(
      `- **CPU 0 was shared** during ${crowded.length} measurement${crowded.length > 1 ? 's' : ''} (its busy share more than ${fmtPct(CROWDED)} above the server's own): ${crowded.map(([name, others]) => `${name} (${fmtPct(others)} others)`).join('; ')}. Those figures understate the server.`,
    )
  if (Number(env.loadAtStart.split(' ')[0]) > env.cores * 0.25)
    L.push(`- **The machine was not quiet** (load average ${env.loadAtStart} at start): treat these figures as provisional.`)
  return `${L.join('\n')}\n`
}

// ---------------------------------------------------------------------------------------------------
// Two-core run (issues 2 and 5)

/** The two-core run's figures in the JSON's names. */
export function twoCoreJson(env, settings, r) {
  const j = { kind: 'fieldgate-bench', mode: 'two-core', env, settings }
  const two = {}
  if (r.raw) {
    two.ceiling_per_s = Math.max(r.raw.rate, r.ceil.rate)
    two.ceiling = { node_two_threads_per_s: r.raw.rate, node_one_thread_per_s: r.raw1.rate, jose_two_threads_per_s: r.ceil.rate, jose_one_thread_per_s: r.ceil1.rate }
  }
  if (r.fg) {
    two.fieldgate = tokenFigure(r.fg)
    if (r.fgPostgres) two.fieldgate_postgres = tokenFigure(r.fgPostgres)
    two.oidc_provider = { ...tokenFigure(r.op), warnings: r.op.warnings, server_errors: r.op.serverErrors }
    two.bare_signer = tokenFigure(r.bare)
  }
  if (Object.keys(two).length) j.two_core = two
  if (r.val) j.validation = { ...figure(r.val), response_bytes: r.val.responseBytes, baseline: figure(r.val.baseline) }
  if (r.res) {
    j.opaque = figure(r.res.withOpaque)
    j.alerts_get_jwt = figure(r.res.withJwt)
  }
  if (r.hooks) j.dispatch = dispatchFigure(r.hooks)
  const fg = two.fieldgate?.tokens_per_s
  const ratios = {
    fieldgate_over_ceiling: ratio(fg, two.ceiling_per_s),
    fieldgate_over_oidc_provider: ratio(fg, two.oidc_provider?.tokens_per_s),
    fieldgate_over_bare: ratio(fg, two.bare_signer?.tokens_per_s),
    fieldgate_over_jose: ratio(fg, two.ceiling?.jose_two_threads_per_s),
    bare_over_ceiling: ratio(two.bare_signer?.tokens_per_s, two.ceiling_per_s),
  }
  j.ratios = Object.fromEntries(Object.entries(ratios).filter(([, v]) => v !== undefined))
  return j
}

/** Today's report (issues 2 and 5); with --only, the sections that ran. */
export function twoCoreReport(env, s, r) {
  const { fg, op, bare, val, ceil, ceil1, raw, raw1, res, hooks } = r
  const workers = s.workers
  const L = header(
    env,
    'Fieldgate benchmark',
    `autocannon ${s.connections} connections, pipelining ${s.pipelining}, ${s.warmup_s} s warm-up discarded, then ${s.duration_s} s measured; 127.0.0.1; one server at a time; only 2xx responses counted`,
  )
  if (fg) {
    L.push('## Client-credentials token endpoint (RS256 JWT access tokens)', '')
    L.push('| Server | tokens/s | p50 | p99 |')
    L.push('|---|---:|---:|---:|')
    L.push(
      `| Fieldgate, \`fieldgate serve --workers ${workers}\`${fg.engine === 'postgres' ? ', PostgreSQL + Redis' : ''} | ${fmtInt(fg.rps)} | ${fmtMs(fg.p50)} ms | ${fmtMs(fg.p99)} ms |`,
    )
    if (r.fgPostgres)
      L.push(
        `| Fieldgate, \`fieldgate serve --workers ${workers}\`, PostgreSQL + Redis | ${fmtInt(r.fgPostgres.rps)} | ${fmtMs(r.fgPostgres.p50)} ms | ${fmtMs(r.fgPostgres.p99)} ms |`,
      )
    L.push(`| oidc-provider ${env.versions.oidcProvider}, node:cluster ${workers} workers | ${fmtInt(op.rps)} | ${fmtMs(op.p50)} ms | ${fmtMs(op.p99)} ms |`)
    L.push(
      `| Reference: bare node:http that only signs, node:cluster ${workers} workers (\`bench/peers/bare-signer.mjs\`) | ${fmtInt(bare.rps)} | ${fmtMs(bare.p50)} ms | ${fmtMs(bare.p99)} ms |`,
    )
    L.push('')
  }
  if (raw) {
    L.push('## RS256 signing ceiling (in process, nothing else running)', '')
    L.push('| Signer | signatures/s |')
    L.push('|---|---:|')
    L.push(`| jose \`SignJWT\`, CryptoKey RS256 2048, both cores (${ceil.threads} worker_threads × ${ceil.inflight} in flight), reference | ${fmtInt(ceil.rate)} |`)
    L.push(`| jose \`SignJWT\`, single core (1 worker_thread, 1 in flight) | ${fmtInt(ceil1.rate)} |`)
    L.push(`| node:crypto \`sign()\` on a KeyObject, both cores (${raw.threads} worker_threads): **the ceiling** | ${fmtInt(raw.rate)} |`)
    L.push(`| node:crypto \`sign()\` on a KeyObject, single core, reference | ${fmtInt(raw1.rate)} |`)
    L.push('')
  }
  if (val) {
    L.push('## Protected API: RS256 token validation per process', '')
    L.push('| Server | req/s | p50 | p99 |')
    L.push('|---|---:|---:|---:|')
    L.push(`| Fieldgate, \`fieldgate serve --workers 1\`, \`GET /api/rest/v2/workorders\` with a Bearer token | ${fmtInt(val.rps)} | ${fmtMs(val.p50)} ms | ${fmtMs(val.p99)} ms |`)
    L.push(
      `| Same process, \`GET /.well-known/oauth-authorization-server\` without a token (reference: HTTP stack alone) | ${fmtInt(val.baseline.rps)} | ${fmtMs(val.baseline.p50)} ms | ${fmtMs(val.baseline.p99)} ms |`,
    )
    L.push('')
  }
  if (res || hooks) {
    L.push('## Resource API and Data API (issue 5), one process', '')
    L.push('| Measurement | rate | p50 | p99 |')
    L.push('|---|---:|---:|---:|')
    if (res) {
      L.push(`| \`GET /v1/alerts\` (5 records) with a client-credentials JWT | ${fmtInt(res.withJwt.rps)} req/s | ${fmtMs(res.withJwt.p50)} ms | ${fmtMs(res.withJwt.p99)} ms |`)
      L.push(
        `| \`GET /v1/alerts\` (5 records) with an opaque connection token | ${fmtInt(res.withOpaque.rps)} req/s | ${fmtMs(res.withOpaque.p50)} ms | ${fmtMs(res.withOpaque.p99)} ms |`,
      )
    }
    if (hooks) {
      L.push(`| Data API dispatch: a backlog of ${fmtInt(hooks.events)} signed events to a local receiver | ${fmtInt(hooks.perSecond)} events/s | | |`)
      L.push(`| \`POST /v1/alerts\` that wrote that backlog (record and event in one transaction, 10 connections) | ${fmtInt(hooks.writesPerSecond)} req/s | | |`)
    }
    L.push('')
    if (hooks)
      L.push(
        `The backlog was written while the receiver was down; once it listened, the outbox drained in ${hooks.seconds.toFixed(2)} s. Rate limits are off in every run here.`,
        '',
      )
  }
  const rows = []
  const ceiling = raw && Math.max(raw.rate, ceil.rate)
  if (fg && raw) {
    const toCeiling = fg.rps / ceiling
    rows.push(
      `| Fieldgate / signing ceiling (fastest in-process RS256 signer, both cores: ${fmtInt(ceiling)}/s) | ${fmtRatio(toCeiling)} | ≥ ${TWO_CORE_TARGETS.ceilingRatio} | ${verdict(toCeiling >= TWO_CORE_TARGETS.ceilingRatio)} |`,
    )
  }
  if (fg) {
    const toPeer = fg.rps / op.rps
    rows.push(`| Fieldgate / oidc-provider | ${fmtRatio(toPeer)} | ≥ ${TWO_CORE_TARGETS.peerRatio} | ${verdict(toPeer >= TWO_CORE_TARGETS.peerRatio)} |`)
    rows.push(`| Fieldgate token endpoint p99 | ${fmtMs(fg.p99)} ms | < ${TWO_CORE_TARGETS.p99Ms} ms | ${verdict(fg.p99 < TWO_CORE_TARGETS.p99Ms)} |`)
  }
  if (val)
    rows.push(`| Validation, one process | ${fmtInt(val.rps)} req/s | ≥ ${fmtInt(TWO_CORE_TARGETS.validationRps)} req/s | ${verdict(val.rps >= TWO_CORE_TARGETS.validationRps)} |`)
  if (fg && raw) rows.push(`| Fieldgate / jose-on-WebCrypto signing rate (reference, no target) | ${fmtRatio(fg.rps / ceil.rate)} | | |`)
  if (fg && raw) rows.push(`| Bare node:http signer / signing ceiling (what any Node.js server can reach here, no target) | ${fmtRatio(bare.rps / ceiling)} | | |`)
  if (fg) rows.push(`| Fieldgate / bare node:http signer (no target) | ${fmtRatio(fg.rps / bare.rps)} | | |`)
  if (rows.length) L.push('## Targets', '', '| Check | Value | Target | |', '|---|---:|---:|---|', ...rows, '')
  L.push('## Notes', '')
  L.push(
    `- The load generator (autocannon) runs on the same ${env.cores} cores as the server under test, so the servers get less than the ${workers} cores the signing ceiling uses; the ceiling ratio is therefore pessimistic for Fieldgate and the same handicap applies to oidc-provider. \`--pinned\` gives each server a core of its own.`,
  )
  if (raw)
    L.push(
      "- The ceiling is the faster in-process signer, node:crypto `sign()` (Fieldgate's token path signs with it, `packages/core/src/tokens/jws.ts`); jose on WebCrypto spends more CPU per signature and is shown for reference only.",
    )
  if (fg)
    L.push(
      `- Token requests: form-encoded \`grant_type=client_credentials&client_id=…&client_secret=…&scope=api\` to both servers (oidc-provider's client uses \`client_secret_post\`). Access tokens: Fieldgate ${fg.jwt.claims} claims, ${fg.jwt.bytes} bytes; oidc-provider ${op.jwt.claims} claims, ${op.jwt.bytes} bytes; both checked to be RS256 \`at+jwt\` before the runs.`,
    )
  L.push(
    '- Fieldgate stores: fresh SQLite store in a temporary FIELDGATE_DATA_DIR per server, one sandbox tenant, one private app. oidc-provider: in-memory development adapter (JWT access tokens are not stored), static client, RS256 key generated at start.',
  )
  if (val)
    L.push(
      `- Validation run: the tenant has no work orders, so each response is an empty page (${val.responseBytes} bytes); a token with a broken signature was checked to get 401 first.`,
    )
  const failures = [fg && `Fieldgate tokens ${fg.failed}`, op && `oidc-provider ${op.failed}`, val && `validation ${val.failed}`].filter(Boolean)
  if (failures.length) L.push(`- Failures counted (non-2xx, errors, timeouts): ${failures.join(', ')} (the run aborts above ${s.max_failure_rate * 100} %).`)
  if (op?.warnings.length) L.push(`- oidc-provider printed: ${op.warnings.map((w) => `"${w}"`).join('; ')}`)
  if (env.cores !== workers)
    L.push(`- This machine has ${env.cores} cores; the harness always uses ${workers} server processes and ${workers} signing threads (the reference machine's cores).`)
  if (op?.serverErrors) L.push(`- oidc-provider logged ${op.serverErrors} server_error events.`)
  if (Number(env.loadAtStart.split(' ')[0]) > env.cores * 0.25)
    L.push(`- **The machine was not quiet** (load average ${env.loadAtStart} at start): treat these figures as provisional.`)
  return `${L.join('\n')}\n`
}

/** The dispatch section's figures as the JSON names them (bench/README.md). */
function dispatchFigure(d) {
  return {
    events_per_s: d.perSecond,
    events: d.events,
    seconds: d.seconds,
    writes_per_s: d.writesPerSecond,
    server_cpu_share: d.serverCpuShare,
    server_cpu_us_per_event: d.serverCpuUsPerEvent,
  }
}
