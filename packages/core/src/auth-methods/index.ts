export * from './cert-service.js';
export * from './jwt-claim-labels.js';
export * from './jwt-method-service.js';
