// Makes a public client (RFC 6749 §2.1: no secret, PKCE S256 required, refresh tokens) on the store the
// environment names, and prints the app as the CLI's --json does. The CLI has no option for a public
// client, so the benches call core's createApp as the CLI's `apps create` does, as an operator.
//   node bench/lib/public-client.mjs '{"name":"…","kind":"public","environment":"sandbox","tenantId":"…",…}'
import { cliActor, createApp, loadConfig } from '@fieldgate/core'
import { appJson, createLogger, openRuntime } from '@fieldgate/server'

const input = JSON.parse(process.argv[2] ?? '{}')
const rt = await openRuntime(loadConfig(), createLogger('error'), { prepare: true, follow: false })
try {
  const { app } = await createApp(rt.ctx, cliActor, { ...input, publicClient: true })
  process.stdout.write(`${JSON.stringify(appJson(app))}\n`)
} finally {
  await rt.close()
}
