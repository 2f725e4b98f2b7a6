export * from './proxy-listener.js';
export * from './proxy-options.js';
