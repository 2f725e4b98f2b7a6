export * from './database-engine.js';
