import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigError } from '@fieldgate/core'
import { contrast, darkenUntil, loadBrand } from '../src/pages/brand.js'
import { startServer, tempDir, type TestServer } from './helpers.js'

/**
 * A platform's own look without a fork: its stylesheet served instead of ours, every page drawn in its
 * HTML template, its logo file; and a start refused, saying why, when one of them cannot be used.
 * The pages themselves under a brand, at two widths and with axe, are in pages-browser.test.ts.
 */

const template = `<!doctype html>
<html lang="{{lang}}">
<head>{{head}}<title>{{title}}</title></head>
<body>
<div class="acme-banner">Acme partner access</div>
{{header}}
{{main}}
{{footer}}
<!-- {{unknown}} stays as written -->
</body>
</html>
`

describe('a stylesheet and a layout template of the platform’s own', () => {
  let server: TestServer
  const dataDir = tempDir()

  before(async () => {
    writeFileSync(join(dataDir, 'acme.css'), 'body { background: #fafafa } /* acme */')
    writeFileSync(join(dataDir, 'layout.html'), template)
    writeFileSync(join(dataDir, 'logo.png'), Buffer.from('89504e470d0a1a0a', 'hex'))
    server = await startServer({
      dataDir,
      listen: false,
      overrides: { brand: { name: 'Acme <Field> & Co', stylesheet: 'acme.css', layout: 'layout.html', logo: 'logo.png', tenantWord: { one: 'company', many: 'companies' } } },
    })
  })
  after(async () => {
    await server?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('draws every page in the template, fills each placeholder once, escapes the brand, and leaves the rest as written', async () => {
    const res = await server.app.inject({ url: '/login' })
    assert.equal(res.statusCode, 200)
    const page = res.body
    assert.match(page, /^<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">/)
    assert.match(page, /<title>Sign in · Acme &lt;Field&gt; &amp; Co<\/title>/)
    assert.match(page, /<div class="acme-banner">Acme partner access<\/div>\n<a class="skip" href="#main">Skip to content<\/a>/)
    assert.match(page, /<main id="main"[^>]*>[\s\S]*<h1>Sign in<\/h1>[\s\S]*<\/main>/)
    assert.match(page, /<img src="\/assets\/brand-logo" alt="" class="logo">/)
    assert.ok(page.includes('<!-- {{unknown}} stays as written -->'))
    assert.equal(page.includes('Fieldgate'), false, 'our name is nowhere')
  })

  it('serves its stylesheet instead of ours, and its logo file with its type', async () => {
    const css = await server.app.inject({ url: '/assets/fieldgate.css' })
    assert.equal(css.body, 'body { background: #fafafa } /* acme */')
    assert.match(String(css.headers['content-type']), /^text\/css/)
    const logo = await server.app.inject({ url: '/assets/brand-logo' })
    assert.equal(logo.headers['content-type'], 'image/png')
    assert.equal(logo.rawPayload.toString('hex'), '89504e470d0a1a0a')
  })

  it('a page never fills a placeholder from what a person typed', async () => {
    const res = await server.app.inject({ url: `/signup?${new URLSearchParams({ return_to: '/{{main}}' })}` })
    assert.equal(res.statusCode, 200)
    assert.equal(res.body.match(/<main id="main"/g)?.length, 1, 'one main, however the page reads')
  })
})

describe('brand files are checked at start', () => {
  const dataDir = tempDir()
  after(() => rmSync(dataDir, { recursive: true, force: true }))
  const brand = (over: Partial<Parameters<typeof loadBrand>[0]['brand']>) => ({
    dataDir,
    brand: {
      file: undefined,
      name: 'Acme',
      logo: undefined,
      color: '#2f6b3a',
      supportUrl: undefined,
      termsUrl: undefined,
      privacyUrl: undefined,
      tenantWord: { one: 'farm', many: 'farms' },
      stylesheet: undefined,
      layout: undefined,
      ...over,
    },
  })

  it('refuses a missing file, a logo of another kind, and a template without {{main}} or {{head}}, naming the setting', () => {
    writeFileSync(join(dataDir, 'no-main.html'), '<html><head>{{head}}</head><body>{{header}}</body></html>')
    writeFileSync(join(dataDir, 'logo.gif'), 'GIF89a')
    assert.throws(
      () => loadBrand(brand({ stylesheet: 'missing.css' })),
      (e) => e instanceof ConfigError && /FIELDGATE_BRAND_STYLESHEET: .*missing\.css does not exist/.test(e.message),
    )
    assert.throws(() => loadBrand(brand({ logo: 'logo.gif' })), /FIELDGATE_BRAND_LOGO: logo\.gif must be a \.png, \.svg, \.jpg or \.webp file/)
    assert.throws(() => loadBrand(brand({ layout: 'no-main.html' })), /FIELDGATE_BRAND_LAYOUT: the template has no \{\{main\}\}/)
  })

  it('works out readable colours: text on the brand colour, and links darkened to 4.5:1 on white', () => {
    const light = loadBrand(brand({ color: '#ffd400' }))
    assert.equal(light.onColor, '#111111', 'dark text on a yellow button')
    assert.ok(contrast(light.textColor, '#ffffff') >= 4.5, `links in ${light.textColor} read on white`)
    const dark = loadBrand(brand({ color: '#1a4d8f' }))
    assert.deepEqual([dark.onColor, dark.textColor], ['#ffffff', '#1a4d8f'], 'a dark colour is used as it is')
    assert.equal(darkenUntil('#000000', 4.5), '#000000')
  })
})
