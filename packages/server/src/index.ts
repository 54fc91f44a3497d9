export { buildApp } from './app.js'
export { createLogger, redactUrl } from './logger.js'
export { openRuntime, loadMasterKey, type Runtime, type RuntimeOptions } from './runtime.js'
export { firstStartBanner, firstStartSteps, serve, type ServeOptions } from './serve.js'
export { bearerToken, requireBearer } from './plugins/bearer.js'
export {
  appInput,
  appJson,
  auditJson,
  clientSettingsInput,
  eventJson,
  grantJson,
  initialAccessTokenJson,
  keyJson,
  mailJson,
  securityEventJson,
  tenantJson,
  userJson,
  type AppWire,
} from './admin-json.js'
export { Dispatcher, type DispatcherOptions } from './webhooks/dispatcher.js'
