export * from './token-service.js';
export * from './token-types.js';
