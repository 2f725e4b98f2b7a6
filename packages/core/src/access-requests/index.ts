export * from './access-request-scope.js';
export * from './access-request-service.js';
export * from './access-request-types.js';
export * from './elevated-authorization.js';
export * from './elevation-index.js';
