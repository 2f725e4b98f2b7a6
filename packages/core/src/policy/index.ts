export * from './authz-request.js';
export { type CedarRuntimeRebuild, onCedarRuntimeRebuild } from './cedar-runtime.js';
export * from './custos-schema.js';
export * from './policy-action.js';
export * from './policy-engine.js';
export * from './policy-name.js';
export * from './policy-text-bounds.js';
export * from './resource-path.js';
export * from './task-scope.js';
