export * from './types.js';
export {
  parseEndpoint,
  EndpointError,
  isLoopbackHost,
  hostPort,
  type Endpoint,
  type Protocol,
  type TlsMode,
} from './endpoint.js';
export {
  loadConfig,
  parseConfigText,
  resolveConfigPath,
  DEFAULT_CONFIG_PATH,
  CONFIG_ENV,
  type LoadOptions,
} from './load.js';
export { ConfigError, formatProblem, closestKey, type ConfigProblem } from './issues.js';
export { readSecret, type SecretRef, type SecretResult } from './secrets.js';
export { renderTemplate, type TemplateOptions } from './template.js';
export { initConfig, type InitOptions, type InitResult } from './init.js';
export { parseListenAddress, configSchema } from './schema.js';
