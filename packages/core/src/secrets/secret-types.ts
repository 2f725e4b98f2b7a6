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
  /**
   * Version stages of a rotated secret. Absent on a plain KV path, where the
   * current version is simply `current_version`; once a path is rotated,
   * reads without a version get `stages.current`, which a pending version
   * (newer, not yet applied and tested) does not change.
   */
  stages?: SecretStages;
}

/** Staged rotation: `pending` becomes `current` only once applied and tested. */
export interface SecretStages {
  current: number;
  /** Still readable by tasks pinned to it, until `previous_retire_time`. */
  previous: number | null;
  pending: number | null;
  previous_retire_time: string | null;
}

/** Pins reads without a version to the version a task tree first saw. */
export interface ReadPin {
  /** The pin's owner: the root task of the reading task's chain, so a whole pipeline shares it. */
  owner: string;
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
