export * from './aws-kms-errors.js';
export * from './aws-kms-key-wrapper.js';
export * from './aws-kms-rotate-target.js';
export * from './aws-kms-seal-config.js';
