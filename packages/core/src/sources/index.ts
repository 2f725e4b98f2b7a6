export * from './source-cache.js';
export * from './source-config.js';
export * from './source-name.js';
export * from './source-retry.js';
export * from './source-service.js';
export * from './source-types.js';
export * from './source-value.js';
