/**
 * The database was migrated by a newer custos than this one. Running older
 * code against a newer schema could corrupt it, so migrate() refuses; it
 * reaches callers as the `cause` of a StorageError.
 */
export class NewerSchemaError extends Error {
  constructor() {
    super('The database schema is newer than this version of custos supports.');
    this.name = 'NewerSchemaError';
  }
}
