export * from './azure-key-vault-errors.js';
export * from './azure-key-vault-key-wrapper.js';
export * from './azure-key-vault-seal-config.js';
