export type {
  RootKeyWrapper,
  RootKeyWrapperHealth,
  RootKeyWrapperRekey,
  RootKeyWrapperTarget,
} from './root-key-wrapper.js';
export { hasHealthCheck } from './root-key-wrapper.js';
export type { SealType } from './seal-config.js';
export type { InitConfig, InitResult, SealHook, SealStatus } from './seal-manager.js';
export { SealManager } from './seal-manager.js';
export { canonicalKeyDescription } from './wrapped-root-key.js';
