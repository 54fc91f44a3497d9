// Reference for bench/run.mjs: the least any Node.js token endpoint can do. node:http on 127.0.0.1:PORT;
// each request's body is read and dropped, and the answer is an at+jwt signed with node:crypto
// (BENCH_ALG: RS256, the default, ES256 or EdDSA; lib/signers.mjs), with claims shaped like Fieldgate's.
// No client authentication, no store, no framework: what is left is HTTP on loopback plus one signature,
// so its rate is the practical ceiling of a token endpoint.
// BENCH_WORKERS processes (default 2) on node:cluster; with BENCH_WORKERS=1 it is one process, no
// cluster, like `fieldgate serve --workers 1`.
//
//   PORT=4501 node bench/peers/bare-signer.mjs      # prints `READY <port>` once every worker listens
import cluster from 'node:cluster'
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import { nodeSigner } from '../lib/signers.mjs'

const port = Number(process.env.PORT)
const workers = Number(process.env.BENCH_WORKERS ?? 2)
const alg = process.env.BENCH_ALG || 'RS256'
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(workers) || workers < 1) {
  console.error('bare-signer: set PORT (and BENCH_WORKERS to 1 or more)')
  process.exit(2)
}

if (workers > 1 && cluster.isPrimary) {
  let listening = 0
  cluster.on('message', (_w, msg) => {
    if (msg === 'listening' && ++listening === workers) process.stdout.write(`READY ${port}\n`)
  })
  cluster.on('exit', () => process.exit(1))
  for (let i = 0; i < workers; i++) cluster.fork()
  const stop = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM')
    process.exit(0)
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
} else {
  const signInput = nodeSigner(alg)
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const header = encode({ alg, kid: 'bare', typ: 'at+jwt' })
  http
    .createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        const iat = Math.floor(Date.now() / 1000)
        const input = `${header}.${encode({
          iss: `http://127.0.0.1:${port}`,
          sub: 'client',
          aud: `http://127.0.0.1:${port}/api`,
          iat,
          exp: iat + 3600,
          jti: randomUUID(),
          client_id: 'client',
          scope: 'api',
          tenant_id: randomUUID(),
          grant_id: randomUUID(),
        })}`
        const body = JSON.stringify({
          access_token: `${input}.${signInput(Buffer.from(input)).toString('base64url')}`,
          token_type: 'Bearer',
          expires_in: 3600,
          scope: 'api',
        })
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(body)
      })
    })
    .listen(port, '127.0.0.1', () => (cluster.isWorker ? process.send?.('listening') : process.stdout.write(`READY ${port}\n`)))
  if (!cluster.isWorker) {
    process.once('SIGTERM', () => process.exit(0))
    process.once('SIGINT', () => process.exit(0))
  }
}
