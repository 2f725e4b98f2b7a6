export * from './create-engine.js';
export * from './credential-generator.js';
export * from './database-engine.js';
export * from './default-statements.js';
export * from './mysql/mysql-engine.js';
export * from './postgres/postgres-engine.js';
export * from './statement-template.js';
