export * from './upstream-allow.js';
export * from './upstream-errors.js';
export * from './upstream-inject.js';
export * from './upstream-path.js';
export * from './upstream-service.js';
export * from './upstream-types.js';
export * from './upstream-url.js';
