export * from './honeytoken-registry.js';
export * from './honeytoken-service.js';
export * from './honeytoken-types.js';
export * from './honeytoken-values.js';
