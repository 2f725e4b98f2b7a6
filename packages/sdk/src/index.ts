export * from './cert-login.js';
export * from './custos-client.js';
export * from './custos-errors.js';
export * from './custos-task.js';
export * from './dynamic-credentials.js';
export { DEFAULT_TIMEOUT_MS, type TransportOptions } from './http-transport.js';
export { SDK_ROUTES, type SdkRouteName } from './sdk-routes.js';
