export * from './cipher.js';
export * from './duration.js';
export * from './transaction-batcher.js';
