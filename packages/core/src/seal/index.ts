export type { RootKeyWrapper } from './root-key-wrapper.js';
export type { SealType } from './seal-config.js';
export type { InitConfig, InitResult, SealHook, SealStatus } from './seal-manager.js';
export { SealManager } from './seal-manager.js';
