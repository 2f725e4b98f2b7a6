export * from './app.js';
export * from './plugins/error-handler.js';
export * from './server-config.js';
export * from './start-server.js';
