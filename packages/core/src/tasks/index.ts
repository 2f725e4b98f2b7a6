export * from './active-hours.js';
export * from './bootstrap-service.js';
export * from './role-service.js';
export * from './role-types.js';
export * from './task-labels.js';
export * from './task-service.js';
export * from './task-standing.js';
export * from './task-types.js';
