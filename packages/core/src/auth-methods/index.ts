export * from './cert-service.js';
export * from './jwt-method-service.js';
