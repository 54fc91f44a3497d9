import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, lstatSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { after, describe, it } from 'node:test'
import { childEnv, repoRoot, runCli, startServer, tempDir, type TestServer } from './helpers.js'

const run = promisify(execFile)

/** The fenced block of `lang` that follows `heading` in a Markdown file. */
function blockAfter(markdown: string, heading: string, lang: string): string {
  const from = markdown.indexOf(heading)
  assert.ok(from >= 0, `no heading ${heading}`)
  const open = markdown.indexOf(`\`\`\`${lang}\n`, from)
  return markdown.slice(open + lang.length + 4, markdown.indexOf('\n```', open))
}

/** A README command line as argv: words, and double-quoted phrases without their quotes. */
const words = (line: string): string[] => (line.match(/"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^"(.*)"$/, '$1'))

/**
 * The SDK as a partner gets it before it is published: `npm pack` of packages/client, installed from the
 * tarball into an empty folder outside the repository (offline: it has no runtime dependencies), then
 * README's first example run there against a real server on loopback.
 */
describe('@fieldgate/client from its packed tarball', () => {
  const work = tempDir('fg-tarball-')
  let server: TestServer | undefined
  after(async () => {
    await server?.close()
    rmSync(work, { recursive: true, force: true })
  })

  it('packs dist/src, the README and the changelog, and no tests or sources', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages/client/package.json'), 'utf8'))
    assert.equal(pkg.dependencies, undefined, 'no runtime dependencies: installs offline, runs anywhere fetch does')
    const { stdout } = await run('npm', ['pack', '-w', 'packages/client', '--pack-destination', work, '--json'], { cwd: repoRoot, env: childEnv({}) })
    const [packed] = JSON.parse(stdout)
    const files: string[] = packed.files.map((f: { path: string }) => f.path)
    for (const wanted of ['package.json', 'README.md', 'CHANGELOG.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client.js']) assert.ok(files.includes(wanted), wanted)
    assert.deepEqual(
      files.filter((f) => !['package.json', 'README.md', 'CHANGELOG.md'].includes(f) && !f.startsWith('dist/src/')),
      [],
      'nothing beyond dist/src and the docs',
    )
    assert.ok(!files.some((f) => /test/.test(f)), 'no tests')
    assert.ok(existsSync(join(work, packed.filename)))
  })

  it("installs into an empty folder and runs README's first example: a token, then the API", async () => {
    const [tarball] = (await run('ls', [work])).stdout.split('\n').filter((f) => f.endsWith('.tgz'))
    assert.ok(tarball, 'the tarball of the test before')
    const app = join(work, 'partner')
    await run('mkdir', [app])
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'partner', version: '1.0.0', private: true }))
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', join(work, tarball)], { cwd: app, env: childEnv({}) })
    const installed = join(app, 'node_modules/@fieldgate/client')
    assert.ok(!lstatSync(installed).isSymbolicLink(), 'a copy from the tarball, not a link into the repository')
    assert.ok(existsSync(join(installed, 'dist/src/index.js')))

    const readme = readFileSync(join(repoRoot, 'packages/client/README.md'), 'utf8')
    const heading = '## FieldEdge: a marketplace app on the tenant that installed it'
    // The app, made with the README's own command.
    const dataDir = join(work, 'data')
    server = await startServer({ dataDir })
    const [command] = blockAfter(readme, heading, 'sh').split('\n')
    const argv = words(command!)
    assert.deepEqual(argv.slice(0, 2), ['npx', 'fieldgate'])
    const made = await runCli(argv.slice(2), { FIELDGATE_DATA_DIR: dataDir })
    assert.equal(made.code, 0, made.stderr)
    writeFileSync(join(app, 'example.mjs'), blockAfter(readme, heading, 'js'))
    const { stdout } = await run(process.execPath, ['example.mjs'], {
      cwd: app,
      env: childEnv({ FIELDGATE_URL: server.url(''), CLIENT_ID: made.json.client_id, CLIENT_SECRET: made.json.client_secret, TARGET_ID: made.json.sandbox_target_id }),
      timeout: 20_000,
    })
    // It printed the lead it made (get), then every lead of the tenant (all): one, that one.
    const lines = stdout.trim().split('\n')
    const id = /^(\S+) Ada Lovelace$/.exec(lines.at(-1)!)?.[1]
    assert.ok(id, stdout)
    assert.match(stdout, /name: 'Ada Lovelace'/)
    assert.match(stdout, /email: 'ada@example.com'/)
    assert.ok(stdout.includes(id))
    assert.equal(lines.filter((l) => l.endsWith(' Ada Lovelace')).length, 1)
  })
})
