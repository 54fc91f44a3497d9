/**
 * Test helpers for the HTTP suite: real servers on loopback, real stores (a fresh SQLite data dir, or a
 * random PostgreSQL schema when DATABASE_URL is set), real fetch. Nothing is mocked.
 *
 * A barrel: the helpers live by concern under support/ (servers, fixtures, HTTP, subprocesses, raw
 * sockets, waiting); the test files import them from here.
 */
export * from './support/servers.js'
export * from './support/fixtures.js'
export * from './support/http.js'
export * from './support/processes.js'
export * from './support/raw.js'
export * from './support/wait.js'
export * from './support/inject.js'
export * from './support/dpop.js'
