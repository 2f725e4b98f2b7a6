export * from './address-ranges.js';
export * from './egress-fetch.js';
export * from './egress-policy.js';
export * from './egress-request.js';
export * from './egress-rule.js';
export * from './egress-socket.js';
export * from './ip-address.js';
export * from './loopback-host.js';
