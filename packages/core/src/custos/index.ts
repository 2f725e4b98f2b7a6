export * from './audit-keys.js';
export * from './custos-node.js';
export * from './policy-service.js';
