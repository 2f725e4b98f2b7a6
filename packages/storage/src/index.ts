export * from './create-storage.js';
export * from './postgres/postgres-storage.js';
export { MAX_LIST_LIMIT } from './shared/list-limit.js';
export * from './sqlite/sqlite-storage.js';
