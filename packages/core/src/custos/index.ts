export * from './audit-keys.js';
export * from './custos-node.js';
export * from './policy-service.js';
export * from './principal.js';
export * from './principal-authenticator.js';
export * from './task-minter.js';
export type { WrappedSealOptions } from './wrapped-seal.js';
