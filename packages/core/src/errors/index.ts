export * from './custos-error.js';
export * from './error-catalogue.js';
export * from './errors.js';
