export * from './resource-errors.js';
export * from './resource-service.js';
export * from './resource-types.js';
export * from './resource-url.js';
