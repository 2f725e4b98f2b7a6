export * from './app.js';
export * from './logging/log-destination.js';
export * from './logging/log-pretty-format.js';
export * from './node-health.js';
export * from './plugins/error-handler.js';
export * from './proxy/index.js';
export * from './server-config.js';
export * from './start-server.js';
