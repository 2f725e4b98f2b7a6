export type { RootKeyWrapper } from '@custos/core';
export * from './aws-kms/index.js';
export * from './azure-key-vault/index.js';
