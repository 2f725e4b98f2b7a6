export * from './database-engine-port.js';
export * from './storage.js';
