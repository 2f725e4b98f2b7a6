export * from './aws-kms-errors.js';
export * from './aws-kms-key-wrapper.js';
export * from './aws-kms-seal-config.js';
