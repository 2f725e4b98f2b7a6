/** A secret's value: a flat object of string fields (`{ username, password }`). */
export type SecretData = Record<string, string>;

/** What is kept about one version. */
export interface VersionMetadata {
  version: number;
  created_time: string;
  created_by: string;
  /** Set when soft-deleted; cleared by undelete. */
  deletion_time: string | null;
  /** True once the value is destroyed for good. */
  destroyed: boolean;
}

/** What is kept about a path (encrypted like the values: storage is untrusted). */
export interface SecretMetadata {
  path: string;
  current_version: number;
  oldest_version: number;
  max_versions: number;
  cas_required: boolean;
  created_time: string;
  updated_time: string;
  created_by: string;
  updated_by: string;
  versions: Record<string, VersionMetadata>;
}

export interface SecretVersion {
  data: SecretData;
  metadata: VersionMetadata;
}

export interface PutSecretOptions {
  /** Check-and-set: the version the caller believes is current; 0 = create only. */
  cas?: number;
}

export interface MetadataUpdate {
  max_versions?: number;
  cas_required?: boolean;
}

/** One entry of a listing: a secret name, or a folder ending in `/`. */
export type SecretListing = { keys: string[] };
