export * from './cipher.js';
export * from './duration.js';
