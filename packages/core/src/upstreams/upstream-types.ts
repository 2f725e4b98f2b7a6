/** Where an inject rule puts the secret: a request header or a query parameter. */
export type InjectTarget = 'header' | 'query';

/** One parsed inject rule: `header:Authorization=Bearer {{value}}`. */
export interface InjectRule {
  readonly target: InjectTarget;
  /** Header names are stored lower-case; query names as written. */
  readonly name: string;
  /** Contains `{{value}}` exactly once. */
  readonly template: string;
}

/** An upstream as stored behind the barrier. */
export interface UpstreamRecord {
  readonly name: string;
  /** `https://host[:port][/path]`, no trailing slash, no query or fragment. */
  readonly base_url: string;
  /** The secret path (`kv/…`) whose field is injected. */
  readonly secret_path: string;
  readonly secret_field: string;
  readonly inject: readonly InjectRule[];
  /** Egress allow entries for this upstream's calls only. */
  readonly allow_hosts: readonly string[];
  /** Path patterns relative to the base URL's path (`/chat/*`); empty = every path. */
  readonly allow_paths: readonly string[];
  /** Upper-case methods; empty = GET HEAD POST PUT PATCH DELETE OPTIONS. */
  readonly allow_methods: readonly string[];
  /** CA certificates (PEM) an https upstream's certificate must chain to, instead of the system's. */
  readonly tls_ca?: string;
  readonly created_time: string;
  readonly updated_time: string;
}

/** What an operator writes (`PUT /v1/upstreams/:name`, `custos upstream add`). */
export interface UpstreamInput {
  base_url: string;
  /** `PATH#FIELD`, e.g. `kv/llm/openai#api_key`. */
  secret: string;
  /** `header:NAME=TEMPLATE` or `query:NAME=TEMPLATE`, `{{value}}` exactly once. */
  inject: readonly string[];
  allow_hosts?: readonly string[];
  allow_paths?: readonly string[];
  allow_methods?: readonly string[];
  /** CA certificates (PEM, inline) for an https upstream with a private CA. */
  tls_ca?: string;
}

/** What is shown: the configuration, in the form it is written (no value ever exists here). */
export interface UpstreamView {
  name: string;
  base_url: string;
  secret: string;
  inject: string[];
  allow_hosts: string[];
  allow_paths: string[];
  allow_methods: string[];
  tls_ca?: string;
  created_time: string;
  updated_time: string;
}
