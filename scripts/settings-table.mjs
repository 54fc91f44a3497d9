// Writes README's Settings table from the settings table in packages/core/src/config.ts, between the
// settings:start and settings:end markers. packages/core/test/config.test.ts fails while they differ.
import { readFileSync, writeFileSync } from 'node:fs'
import { settingsMarkdown } from '@fieldgate/core'

const readme = new URL('../README.md', import.meta.url)
const start = '<!-- settings:start -->'
const end = '<!-- settings:end -->'
const text = readFileSync(readme, 'utf8')
const from = text.indexOf(start)
const to = text.indexOf(end)
if (from === -1 || to < from) throw new Error(`README.md has no ${start} … ${end} section`)
writeFileSync(readme, `${text.slice(0, from + start.length)}\n${settingsMarkdown()}\n${text.slice(to)}`)
