export * from './secret-data.js';
export * from './secret-path.js';
export * from './secret-service.js';
export * from './secret-types.js';
