export * from './aws-kms/index.js';
export * from './azure-key-vault/index.js';
