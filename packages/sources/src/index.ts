export * from './aws-secrets-manager-client.js';
export * from './azure-key-vault-client.js';
export * from './create-source-client.js';
export * from './egress-aws-handler.js';
export * from './egress-azure-client.js';
