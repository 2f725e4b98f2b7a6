/**
 * The one catalogue of custos error codes. Every code a client can see is
 * listed here with its HTTP status and a sentence for the documentation; a
 * test checks that every code is documented in docs/errors.md and that no code
 * is thrown that is not listed.
 *
 * Messages are fixed per code. Auth and crypto failures in particular say
 * nothing about *why* (which check failed, which key) so that an attacker
 * learns only the code.
 */
export const ERROR_CATALOGUE = {
  CUSTOS_ERR_BAD_REQUEST: { status: 400, message: 'The request is malformed.' },
  CUSTOS_ERR_VALIDATION: { status: 400, message: 'The request does not match the expected schema.' },
  CUSTOS_ERR_INVALID_PATH: { status: 400, message: 'The path is not a valid custos path.' },
  CUSTOS_ERR_INVALID_POLICY: { status: 400, message: 'The policy does not parse or does not validate.' },
  CUSTOS_ERR_POLICY_ENGINE_FAULT: {
    status: 503,
    message: 'The policy engine failed while deciding this request; the request was refused.',
  },
  CUSTOS_ERR_INVALID_TTL: { status: 400, message: 'The TTL is not a valid duration within limits.' },
  CUSTOS_ERR_TTL_EXCEEDS_PARENT: { status: 400, message: 'The requested TTL outlives the parent task.' },
  CUSTOS_ERR_BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than allowed.' },
  CUSTOS_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request content type is not supported.' },
  CUSTOS_ERR_UNSUPPORTED_PARAMETER: {
    status: 400,
    message: 'The request uses a parameter or value this server does not support; it was refused rather than ignored.',
  },
  CUSTOS_ERR_UNAUTHENTICATED: { status: 401, message: 'Authentication is required or the token is not valid.' },
  CUSTOS_ERR_PERMISSION_DENIED: { status: 403, message: 'Permission denied.' },
  CUSTOS_ERR_NOT_FOUND: { status: 404, message: 'Nothing exists at this path.' },
  CUSTOS_ERR_ROUTE_NOT_FOUND: { status: 404, message: 'No such endpoint.' },
  CUSTOS_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed on this endpoint.' },
  CUSTOS_ERR_VERSION_NOT_FOUND: { status: 404, message: 'The requested version does not exist.' },
  CUSTOS_ERR_VERSION_DELETED: { status: 404, message: 'The requested version is deleted.' },
  CUSTOS_ERR_VERSION_DESTROYED: { status: 410, message: 'The requested version was destroyed.' },
  CUSTOS_ERR_CAS_MISMATCH: { status: 409, message: 'The check-and-set version does not match the current version.' },
  CUSTOS_ERR_CAS_REQUIRED: { status: 400, message: 'This path requires a check-and-set version.' },
  CUSTOS_ERR_FIELD_NOT_FOUND: { status: 404, message: 'The secret has no such field.' },
  CUSTOS_ERR_ALREADY_EXISTS: { status: 409, message: 'It already exists.' },
  CUSTOS_ERR_ALREADY_INITIALIZED: { status: 409, message: 'custos is already initialised.' },
  CUSTOS_ERR_NOT_INITIALIZED: { status: 503, message: 'custos is not initialised.' },
  CUSTOS_ERR_SEALED: { status: 503, message: 'custos is sealed.' },
  CUSTOS_ERR_NOT_SEALED: {
    status: 409,
    message: 'custos is not sealed: there is no unseal progress to reset.',
  },
  CUSTOS_ERR_UNSEAL_FAILED: { status: 400, message: 'The unseal key shares do not reconstruct the root key.' },
  CUSTOS_ERR_INVALID_SHARE: { status: 400, message: 'The unseal key share is malformed.' },
  CUSTOS_ERR_SEAL_UNSUPPORTED: { status: 400, message: 'The seal does not support this operation.' },
  CUSTOS_ERR_SEAL_KEY_MISMATCH: {
    status: 503,
    message:
      'The configured seal key never wrapped this root key: the server config names another key than the ones storage holds.',
  },
  CUSTOS_ERR_SEAL_MIGRATION_REQUIRED: {
    status: 503,
    message:
      'The stored seal differs from the configured one; start the server with --migrate-seal and present the old seal once.',
  },
  CUSTOS_ERR_SEAL_UNAVAILABLE: {
    status: 503,
    message:
      "The seal's root of trust (HSM or KMS) cannot be reached or refused the operation; custos stays sealed and retries.",
  },
  CUSTOS_ERR_SEAL_CONFIG_INVALID: {
    status: 500,
    message: 'The seal configuration is invalid (missing field, unknown mechanism, PIN environment variable unset).',
  },
  CUSTOS_ERR_SEAL_ACCESS_DENIED: {
    status: 503,
    message: 'The root of trust refused the credentials (wrong PIN, locked token, access denied).',
  },
  CUSTOS_ERR_SEAL_KEY_NOT_FOUND: { status: 503, message: 'The seal key does not exist in the root of trust.' },
  CUSTOS_ERR_SEAL_KEY_INSECURE: {
    status: 503,
    message: 'The seal key is refused: it is extractable or not sensitive, so it could leave the root of trust.',
  },
  CUSTOS_ERR_SEAL_MECHANISM_UNSUPPORTED: {
    status: 503,
    message: 'The root of trust does not support the configured wrapping mechanism for this key.',
  },
  CUSTOS_ERR_HSM_LIBRARY: {
    status: 503,
    message: 'The PKCS#11 library could not be loaded or initialised.',
  },
  CUSTOS_ERR_HSM_TOKEN_NOT_FOUND: {
    status: 503,
    message: 'No PKCS#11 token matches the configured slot or token label.',
  },
  CUSTOS_ERR_INSECURE_KEY_FILE: {
    status: 500,
    message: 'The seal key file is accessible to group or others; restrict it to its owner (chmod 600).',
  },
  CUSTOS_ERR_INTEGRITY: { status: 500, message: 'Stored data failed its integrity check.' },
  CUSTOS_ERR_AUDIT_UNAVAILABLE: { status: 503, message: 'The request was refused because it could not be audited.' },
  CUSTOS_ERR_AUDIT_INTEGRITY: {
    status: 503,
    message:
      'The audit log disagrees with its signed checkpoints or its file copy; custos stays sealed and signs nothing until an operator resolves it.',
  },
  CUSTOS_ERR_RATE_LIMITED: { status: 429, message: 'Too many requests.' },
  CUSTOS_ERR_STORAGE: { status: 503, message: 'The storage backend failed.' },
  CUSTOS_ERR_SHUTTING_DOWN: { status: 503, message: 'The server is shutting down.' },
  CUSTOS_ERR_INTERNAL: { status: 500, message: 'Internal error.' },
  CUSTOS_ERR_SCOPE_EXCEEDS_PARENT: {
    status: 403,
    message: 'The requested scope is not a subset of the parent task’s scope.',
  },
  CUSTOS_ERR_DELEGATION_DEPTH: { status: 403, message: 'The delegation depth limit of the role is reached.' },
  CUSTOS_ERR_AUTH_METHOD_NOT_ALLOWED: { status: 403, message: 'The role does not allow this authentication method.' },
  CUSTOS_ERR_LABEL_NOT_ALLOWED: {
    status: 403,
    message:
      'This label cannot be set here: agents add only agent.* labels, others only the keys the role lets be granted, and inherited or role labels never change.',
  },
  CUSTOS_ERR_SUSPENDED: {
    status: 403,
    message:
      'The role or identity is suspended (by an operator or an anomaly rule): no login, start, delegation or task request is accepted until an operator resumes it.',
  },
  CUSTOS_ERR_ACTIVE_HOURS_INVALID: {
    status: 400,
    message:
      "An active-hours window is 'DAYS HH:MM-HH:MM ZONE': days Mon..Sun or a range (Mon-Fri), times 00:00 to 24:00 (an end before the start runs past midnight), an IANA time zone (Europe/Berlin, UTC); windows are comma-separated, at most 16.",
  },
  CUSTOS_ERR_DPOP_REQUIRED: { status: 401, message: 'A DPoP proof is required or not valid.' },
  CUSTOS_ERR_ENGINE_UNAVAILABLE: { status: 503, message: 'The database engine is unreachable or refused custos.' },
  CUSTOS_ERR_ENGINE_NOT_FOUND: { status: 404, message: 'No such database engine.' },
  CUSTOS_ERR_ENGINE_URL_REFUSED: {
    status: 400,
    message:
      'The engine URL carries a query parameter, scheme or part custos does not pass to the driver (only sslmode, connect_timeout and, for PostgreSQL, application_name).',
  },
  CUSTOS_ERR_AWS_NO_CREDENTIALS: {
    status: 503,
    message:
      'The AWS SDK default provider chain found no credentials for custos (environment, shared config, web identity, container or instance role); custos never takes AWS credentials from its own configuration.',
  },
  CUSTOS_ERR_AWS_ACCESS_DENIED: {
    status: 403,
    message:
      'AWS refused the call custos made with its own IAM principal (AccessDenied); the engine and the IAM role are named in the detail, never a credential.',
  },
  CUSTOS_ERR_AWS_UNAVAILABLE: {
    status: 503,
    message: 'AWS STS or IAM did not answer in time, or kept throttling after custos retried with backoff.',
  },
  CUSTOS_ERR_AWS_REQUEST_REFUSED: {
    status: 422,
    message:
      'AWS refused the request as invalid (for example a session policy too large, a duration above the IAM role’s MaxSessionDuration, a trust policy that does not allow sts:TagSession or sts:SetSourceIdentity).',
  },
  CUSTOS_ERR_AWS_DURATION_TOO_SHORT: {
    status: 409,
    message:
      'AWS issues role sessions for at least 900 seconds, and the task has less time left (or asked for less): custos refuses rather than hand out credentials that outlive the task.',
  },
  CUSTOS_ERR_AWS_LEASE_NOT_RENEWABLE: {
    status: 409,
    message: 'AWS role-session credentials cannot be extended; ask for new credentials instead.',
  },
  CUSTOS_ERR_LEASE_NOT_FOUND: { status: 404, message: 'No such lease, or it has already ended.' },
  CUSTOS_ERR_ROTATION_FAILED: {
    status: 502,
    message: 'The rotation failed to apply or test the new version; the current version is unchanged.',
  },
  CUSTOS_ERR_ROTATION_IN_PROGRESS: { status: 409, message: 'A rotation of this secret is already running.' },
  CUSTOS_ERR_REPLAY_BUSY: {
    status: 409,
    message: 'An alert replay is already running on this node; try again when it has finished.',
  },
  CUSTOS_ERR_USER_NOT_ROTATABLE: {
    status: 403,
    message:
      'The database user is not in the engine’s rotatable users, or is the engine’s own admin account (use rotate-root).',
  },
  CUSTOS_ERR_EGRESS_REFUSED: {
    status: 403,
    message: 'The egress policy refuses this destination (loopback, link-local, private or not allowed).',
  },
  CUSTOS_ERR_EGRESS_FAILED: {
    status: 502,
    message: 'The outbound request did not complete: unreachable, timed out, redirected or answered too much.',
  },
  CUSTOS_ERR_UPSTREAM_NOT_FOUND: { status: 404, message: 'No such upstream.' },
  CUSTOS_ERR_UPSTREAM_URL_INVALID: {
    status: 400,
    message:
      'The upstream base URL must be https (http only to a loopback host), without credentials, query or fragment, and with a plain path.',
  },
  CUSTOS_ERR_UPSTREAM_INJECT_INVALID: {
    status: 400,
    message:
      'An inject rule is header:NAME=TEMPLATE or query:NAME=TEMPLATE with {{value}} exactly once, no control characters, and no hop-by-hop or Host header.',
  },
  CUSTOS_ERR_UPSTREAM_ALLOW_INVALID: {
    status: 400,
    message:
      'An allow-path is /… with * only at the end and no ./.. or empty segments; an allow-method is GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS; an allow-host is an egress allow entry.',
  },
  CUSTOS_ERR_UPSTREAM_SECRET_INVALID: {
    status: 400,
    message: 'The upstream secret is PATH#FIELD: a secret path under kv/ and a field name.',
  },
  CUSTOS_ERR_UPSTREAM_SECRET_UNAVAILABLE: {
    status: 502,
    message:
      'The upstream’s secret cannot be read or is not a value custos can send (missing, deleted, no such field, control characters).',
  },
  CUSTOS_ERR_PROXY_PATH_REFUSED: {
    status: 400,
    message:
      'The proxied path is refused: traversal (.., encoded dots or slashes, backslashes, empty segments) or control characters.',
  },
  CUSTOS_ERR_PROXY_METHOD_REFUSED: { status: 405, message: 'The upstream does not allow this method.' },
  CUSTOS_ERR_PROXY_PATH_NOT_ALLOWED: { status: 403, message: 'The upstream does not allow this path.' },
  CUSTOS_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'The upstream did not answer in time.' },
  CUSTOS_ERR_UPSTREAM_FAILED: {
    status: 502,
    message: 'The upstream could not be reached or cut the connection.',
  },
  CUSTOS_ERR_UPSTREAM_RESPONSE_REFUSED: {
    status: 502,
    message: 'The upstream’s answer cannot be redacted (compressed or binary), so it is not passed on.',
  },
  CUSTOS_ERR_RESOURCE_NOT_FOUND: { status: 404, message: 'No such resource.' },
  CUSTOS_ERR_RESOURCE_URL_INVALID: {
    status: 400,
    message:
      'A resource URL is an absolute https URL (http only to a loopback host) without userinfo, query or fragment, and with a plain path.',
  },
  CUSTOS_ERR_SCOPE_EXCEEDS_RESOURCE: {
    status: 403,
    message: 'The requested scope is not within the scopes registered for the resource.',
  },
  CUSTOS_ERR_RESOURCE_SCOPE_INVALID: {
    status: 400,
    message: 'A resource scope is a list of single ACTION:PATTERN entries.',
  },
  CUSTOS_ERR_REQUEST_NOT_REQUESTABLE: {
    status: 403,
    message:
      'The scope is outside what the task’s role lets its tasks request (its request ceiling); the request was refused, not queued.',
  },
  CUSTOS_ERR_REQUEST_TTL_EXCEEDS_TASK: {
    status: 400,
    message: 'The requested elevation would outlive the requesting task.',
  },
  CUSTOS_ERR_REQUEST_SELF_APPROVAL: {
    status: 403,
    message: 'A request cannot be decided by its requester, by any task, or by the identity its task tree acts for.',
  },
  CUSTOS_ERR_REQUEST_WIDENING: {
    status: 400,
    message:
      'An approval may narrow a request (scope, TTL, children), never widen it beyond what was asked or already approved.',
  },
  CUSTOS_ERR_REQUEST_ALREADY_DECIDED: {
    status: 409,
    message: 'The request was already decided (approved, denied, revoked or expired); the first decision stands.',
  },
  CUSTOS_ERR_REQUEST_TASK_ENDED: {
    status: 409,
    message: 'The requesting task has ended, expired or been revoked: its request can no longer be approved.',
  },
  CUSTOS_ERR_REQUEST_LIMIT: {
    status: 429,
    message: 'The task has too many pending access requests.',
  },
  CUSTOS_ERR_SEAL_KMS_NO_CREDENTIALS: {
    status: 503,
    message:
      'The cloud KMS seal found no credentials in its SDK’s default provider chain (environment, shared config, instance role or managed identity); custos stays sealed.',
  },
  CUSTOS_ERR_SOURCE_NOT_FOUND: { status: 404, message: 'No such secret source.' },
  CUSTOS_ERR_SOURCE_INVALID: {
    status: 400,
    message:
      'A source is aws-secrets-manager (a region, an optional prefix and https endpoint) or azure-key-vault (an https vault URL), with a cache TTL of 0–300 s and a timeout of 0.5–30 s.',
  },
  CUSTOS_ERR_SOURCE_MOUNT_CONFLICT: {
    status: 409,
    message: 'custos already holds secrets under kv/<name>/: a source cannot be mounted over them.',
  },
  CUSTOS_ERR_SOURCE_READ_ONLY: {
    status: 409,
    message: 'The path is under a secret source mount (kv/<source>/…), which is read-through: write at the source.',
  },
  CUSTOS_ERR_SOURCE_ACCESS_DENIED: {
    status: 403,
    message: 'The secret source refused custos’s cloud identity access to this secret.',
  },
  CUSTOS_ERR_SOURCE_THROTTLED: {
    status: 503,
    message: 'The secret source kept throttling custos after bounded retries; try again later.',
  },
  CUSTOS_ERR_SOURCE_TIMEOUT: { status: 504, message: 'The secret source did not answer in time.' },
  CUSTOS_ERR_SOURCE_UNAVAILABLE: {
    status: 502,
    message:
      'The secret source could not be reached, had no cloud credentials in its SDK’s default chain, or answered with an error.',
  },
  CUSTOS_ERR_SOURCE_SECRET_TOO_LARGE: {
    status: 502,
    message: 'The secret at the source is larger than custos serves (the kv write limit); it was not returned.',
  },
  CUSTOS_ERR_SOURCE_SECRET_MALFORMED: {
    status: 502,
    message:
      'The secret at the source is declared JSON but is not a JSON object custos can serve as fields (malformed, or field names outside letters, digits, _ . -).',
  },
} as const satisfies Record<string, { status: number; message: string }>;

/** A stable error code, `CUSTOS_ERR_…`. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Every catalogued code, in catalogue order. */
export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];
