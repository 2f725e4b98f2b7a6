export type { RootKeyWrapper } from '@custos/core';
