import type { Actor } from '../audit.js'
import type { SigningAlg } from '../config.js'
import type { OperationContext } from '../context.js'
import { planBootstrap, planRotation, type KeyPlan } from '../keys.js'
import type { SigningKeyRecord } from '../model.js'
import { conflict, invalid } from '../operation-error.js'
import type { Storage } from '../storage.js'
import { requireOperator } from './access.js'

/**
 * First start: creates the signing keys the server needs, if they are not there yet. Processes that
 * start together on an empty store race here; exactly one set of keys wins and every process uses it.
 * A step of opening the store, before any context exists.
 */
export async function ensureSigningKeys(storage: Storage, alg: SigningAlg, masterKey: Buffer, now = Date.now()): Promise<SigningKeyRecord[]> {
  return applyKeyPlan(storage, (records) => planBootstrap(records, alg, masterKey, now))
}

/** The published next key starts signing; the old one verifies until the longest-lived token it signed expires. */
export async function rotateSigningKeys(ctx: OperationContext, actor: Actor, input: { alg: SigningAlg; defaultMaxTtl: number }): Promise<SigningKeyRecord[]> {
  requireOperator(actor, 'rotate signing keys')
  const { masterKey } = ctx
  if (!masterKey) throw invalid('rotating signing keys needs the master key')
  const apps = await ctx.storage.listApps()
  const maxTokenTtl = Math.max(input.defaultMaxTtl, ...apps.map((a) => a.tokenTtl ?? 0))
  return applyKeyPlan(ctx.storage, (records) => planRotation(records, input.alg, masterKey, ctx.now(), maxTokenTtl))
}

/** Plans a change from the stored keys and saves it only if they are still those keys; else plans again. */
async function applyKeyPlan(storage: Storage, plan: (records: SigningKeyRecord[]) => Promise<KeyPlan>): Promise<SigningKeyRecord[]> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const records = await storage.listSigningKeys()
    const { insert, update } = await plan(records)
    if (insert.length === 0 && update.length === 0) return records
    if (await storage.saveSigningKeys(insert, update, records)) return storage.listSigningKeys()
  }
  throw conflict('the signing keys kept changing under this command: run it again')
}
