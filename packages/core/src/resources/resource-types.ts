/** A registered resource as stored behind the barrier. */
export interface ResourceRecord {
  readonly name: string;
  /** The canonical resource indicator ({@link canonicalResourceUrl}): the `aud` of its tokens. */
  readonly url: string;
  /** The scope entries its tokens may carry (`ACTION:PATTERN`); empty = any the parent holds. */
  readonly scopes: readonly string[];
  /** Shown in its public metadata (`resource_name`). */
  readonly description?: string;
  readonly created_time: string;
  readonly updated_time: string;
}

/** What an operator writes (`PUT /v1/resources/:name`, `custos resource add`). */
export interface ResourceInput {
  url: string;
  scopes?: readonly string[];
  description?: string;
}

/** What is shown (everything in a record is configuration; nothing is secret). */
export type ResourceView = {
  -readonly [K in keyof ResourceRecord]: ResourceRecord[K] extends readonly string[] ? string[] : ResourceRecord[K];
};
