import { existsSync, readFileSync } from 'node:fs'
import { extname, join } from 'node:path'
import { ConfigError, type Config } from '@fieldgate/core'

/** The customer's organisation in a page's words: "farm", "Farms". */
export interface Words {
  readonly tenant: string
  readonly tenants: string
  readonly Tenant: string
  readonly Tenants: string
}

/** The platform's brand as pages draw it: config.brand with its files read and its colours worked out. */
export interface Brand {
  readonly name: string
  /** Where the header's logo is loaded from: an https URL or /assets/brand-logo. */
  readonly logoSrc: string | undefined
  readonly color: string
  /** Text on the primary colour: white or near-black, whichever is readable (WCAG contrast). */
  readonly onColor: string
  /** The primary colour darkened, where it must, to 4.5:1 on white: links and outlined buttons (WCAG 1.4.3). */
  readonly textColor: string
  readonly supportUrl: string | undefined
  readonly termsUrl: string | undefined
  readonly privacyUrl: string | undefined
  readonly words: Words
  /** A stylesheet of the platform's own, served instead of Fieldgate's. */
  readonly stylesheet: string | undefined
  /** An HTML template of the platform's own that every page is drawn in. */
  readonly layout: string | undefined
  /** The logo file from the data dir, served at /assets/brand-logo. */
  readonly logoFile: { readonly type: string; readonly body: Buffer } | undefined
}

const imageTypes: Readonly<Record<string, string>> = { '.png': 'image/png', '.svg': 'image/svg+xml', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp' }

/** Placeholders a layout template must have, or pages would lose their content. */
export const requiredPlaceholders = ['{{main}}', '{{head}}'] as const

const capital = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1)

export const wordsFor = (word: Config['brand']['tenantWord']): Words => ({ tenant: word.one, tenants: word.many, Tenant: capital(word.one), Tenants: capital(word.many) })

/** Reads the brand's files once at start; a file that is missing or of the wrong kind stops the start with why. */
export function loadBrand(config: Pick<Config, 'brand' | 'dataDir'>): Brand {
  const b = config.brand
  const file = (name: string, variable: string): Buffer => {
    const path = join(config.dataDir, name)
    if (!existsSync(path)) throw new ConfigError(`${variable}: ${path} does not exist`)
    return readFileSync(path)
  }
  let logoFile: Brand['logoFile']
  if (b.logo !== undefined && !b.logo.startsWith('https://')) {
    const type = imageTypes[extname(b.logo).toLowerCase()]
    if (!type) throw new ConfigError(`FIELDGATE_BRAND_LOGO: ${b.logo} must be a .png, .svg, .jpg or .webp file`)
    logoFile = { type, body: file(b.logo, 'FIELDGATE_BRAND_LOGO') }
  }
  const layout = b.layout === undefined ? undefined : file(b.layout, 'FIELDGATE_BRAND_LAYOUT').toString('utf8')
  const missing = layout === undefined ? [] : requiredPlaceholders.filter((p) => !layout.includes(p))
  if (missing.length) throw new ConfigError(`FIELDGATE_BRAND_LAYOUT: the template has no ${missing.join(' or ')}`)
  return Object.freeze({
    name: b.name,
    logoSrc: logoFile ? '/assets/brand-logo' : b.logo,
    color: b.color,
    onColor: readableOn(b.color),
    textColor: darkenUntil(b.color, 4.5),
    supportUrl: b.supportUrl,
    termsUrl: b.termsUrl,
    privacyUrl: b.privacyUrl,
    words: wordsFor(b.tenantWord),
    stylesheet: b.stylesheet === undefined ? undefined : file(b.stylesheet, 'FIELDGATE_BRAND_STYLESHEET').toString('utf8'),
    layout,
    logoFile,
  })
}

/** WCAG 2.x relative luminance of #rrggbb. */
export function luminance(hex: string): number {
  const channel = (i: number) => {
    const c = Number.parseInt(hex.slice(i, i + 2), 16) / 255
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  }
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
}

export const contrast = (a: string, b: string): number => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x)
  return (hi! + 0.05) / (lo! + 0.05)
}

const readableOn = (color: string): string => (contrast(color, '#ffffff') >= contrast(color, '#111111') ? '#ffffff' : '#111111')

/** The colour, darkened in steps until its contrast on white reaches `ratio`. */
export function darkenUntil(hex: string, ratio: number): string {
  let rgb = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16))
  const toHex = (c: number[]) => `#${c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`
  while (contrast(toHex(rgb), '#ffffff') < ratio) rgb = rgb.map((v) => v * 0.92)
  return toHex(rgb)
}
