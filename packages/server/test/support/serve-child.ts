/**
 * `fieldgate serve` with settings that have no variable (token lifetimes, for one): the same serve() the
 * CLI runs, on FIELDGATE_* from the environment plus the ConfigOverrides in FIELDGATE_TEST_OVERRIDES
 * (JSON). For tests that need a server in a process of its own, where only a process will do: a
 * NODE_EXTRA_CA_CERTS of its own, say, to trust a test's https server. Started by spawnServe's
 * `overrides` option.
 */
import { loadConfig, type ConfigOverrides } from '@fieldgate/core'
import { createLogger, serve } from '@fieldgate/server'

const overrides: ConfigOverrides = JSON.parse(process.env.FIELDGATE_TEST_OVERRIDES ?? '{}')
const config = loadConfig(process.env, overrides)
await serve(config, createLogger(config.logLevel), { workers: 1 })
