export * from './admin-not-rotatable-error.js';
export * from './engine-service.js';
export * from './engine-types.js';
export * from './lease-service.js';
export * from './lease-types.js';
