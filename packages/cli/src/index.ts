export * from './cli-io.js';
export * from './http-client.js';
export * from './program.js';
