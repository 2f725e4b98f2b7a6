export * from './aws-kms/index.js';
