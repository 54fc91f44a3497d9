import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'
import { openSqlite } from '../src/index.js'
import { storageContract } from './contract.js'

// One temp dir per run; each area of the contract gets its own database file in it.
const dir = mkdtempSync(join(tmpdir(), 'fg-'))
let files = 0

after(() => rmSync(dir, { recursive: true, force: true }))

storageContract('SQLite', async () => openSqlite(dir, `contract-${++files}.db`))
