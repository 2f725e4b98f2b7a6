export * from './aws-iam-method-service.js';
export * from './aws-signed-request.js';
export * from './cert-service.js';
export * from './jwt-claim-labels.js';
export * from './jwt-method-service.js';
