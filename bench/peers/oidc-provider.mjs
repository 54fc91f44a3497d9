// Peer for bench/run.mjs: oidc-provider (npm `oidc-provider` v9) issuing RS256 JWT access tokens for the
// client_credentials grant, on node:cluster with BENCH_WORKERS processes (default 2) on 127.0.0.1:PORT.
// With BENCH_WORKERS=1 it is one process, no cluster, like `fieldgate serve --workers 1`.
//
//   PORT=4500 node bench/peers/oidc-provider.mjs
//
// The primary generates one RS256 key (so every worker signs with the same JWKS), forks the workers and
// prints `READY <port> <client_id> <client_secret>` on stdout once all of them listen. SIGTERM/SIGINT stop
// everything; workers also exit when the primary goes away (node:cluster closes their IPC channel).
// Storage is oidc-provider's in-memory development adapter: JWT access tokens are not stored, and the one
// client is static configuration, so nothing needs to be shared between the workers.
import cluster from 'node:cluster'
import http from 'node:http'

const port = Number(process.env.PORT)
const host = '127.0.0.1'
const workers = Number(process.env.BENCH_WORKERS ?? 2)
const client = { client_id: 'bench-client', client_secret: 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz' }
const resource = 'https://api.example'

if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(workers) || workers < 1) {
  console.error('oidc-provider peer: set PORT (and BENCH_WORKERS to 1 or more)')
  process.exit(2)
}

/** One RS256 signing key as a private JWK. */
async function signingJwk() {
  const { generateKeyPair, exportJWK } = await import('jose')
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
  return { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'bench-rs256' }
}

if (workers > 1 && cluster.isPrimary) {
  const jwk = await signingJwk()
  let listening = 0
  let stopping = false
  cluster.on('message', (_worker, msg) => {
    if (msg === 'listening' && ++listening === workers) process.stdout.write(`READY ${port} ${client.client_id} ${client.client_secret}\n`)
  })
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return
    // A worker dying mid-benchmark would skew the figures: stop loudly instead of restarting it.
    console.error(`oidc-provider peer: worker ${worker.process.pid} exited (code ${code}, signal ${signal})`)
    stop(1)
  })
  const stop = (code = 0) => {
    stopping = true
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM')
    setTimeout(() => process.exit(code), 200).unref()
  }
  process.once('SIGTERM', () => stop(0))
  process.once('SIGINT', () => stop(0))
  for (let i = 0; i < workers; i++) cluster.fork({ BENCH_JWK: JSON.stringify(jwk) })
} else {
  const jwk = process.env.BENCH_JWK ? JSON.parse(process.env.BENCH_JWK) : await signingJwk()
  const { default: Provider } = await import('oidc-provider')
  const provider = new Provider(`http://${host}:${port}`, {
    clients: [
      {
        ...client,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        // The same form body as Fieldgate gets: client_id and client_secret in the body.
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    ttl: { ClientCredentials: 3600 }, // Fieldgate's private-app default
    jwks: { keys: [jwk] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: resource,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  })
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err))
  const server = http.createServer(provider.callback())
  server.keepAliveTimeout = 72_000 // like Fieldgate's (Fastify's default), so autocannon keeps its connections
  const ready = () => (cluster.isWorker ? process.send?.('listening') : process.stdout.write(`READY ${port} ${client.client_id} ${client.client_secret}\n`))
  server.listen(port, host, ready)
  if (cluster.isWorker) process.once('SIGTERM', () => server.close(() => process.exit(0)))
  else for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => process.exit(0)) // keep-alive sockets would hold close() for 72 s
}
