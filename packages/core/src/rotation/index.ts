export * from './cron-schedule.js';
export * from './event-bus.js';
export * from './rotation-service.js';
export * from './rotation-types.js';
export * from './rotator.js';
