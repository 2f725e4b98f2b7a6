export * from './aws-sts-engine-port.js';
export * from './database-engine-port.js';
export * from './storage.js';
