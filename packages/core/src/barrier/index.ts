export { Barrier } from './barrier.js';
export { BLOB_VERSION, KEY_BYTES } from './barrier-blob.js';
export type { KeyringBinding } from './keyring-store.js';
