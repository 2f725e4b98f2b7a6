export * from './aws-kms/index.js';
export * from './azure-key-vault/index.js';
export {
  type CreateRootKeyWrapperOptions,
  createRootKeyWrapper,
  isWrappedSealType,
  WRAPPED_SEAL_TYPES,
} from './create-root-key-wrapper.js';
export {
  DEFAULT_PKCS11_MECHANISM,
  type Pkcs11Mechanism,
  type Pkcs11SealConfig,
  parsePkcs11SealConfig,
} from './pkcs11/pkcs11-config.js';
export { Pkcs11KeyWrapper, type Pkcs11OpenOptions } from './pkcs11/pkcs11-key-wrapper.js';
