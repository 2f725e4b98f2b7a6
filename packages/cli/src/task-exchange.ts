import type { CliIo } from './cli-io.js';
import { postOAuth } from './oauth-request.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** What the token endpoint answers for a delegation. */
export interface ExchangeResult {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  task_id: string;
  accessor: string;
  /** With `resource`: the child token's audience, that registered resource's URL. */
  aud?: string;
}

/**
 * Mints a child of the task whose token is `subject` (RFC 8693 token
 * exchange, form-encoded): its scope within the parent's, its lifetime
 * never past the parent's — custos refuses anything wider. The call carries
 * no `Authorization`: the subject token is the credential. With `resource`
 * (RFC 8707), the child's token is for that registered resource alone.
 */
export function delegateTask(
  io: CliIo,
  subject: string,
  child: { scope?: readonly string[]; ttl?: string; resource?: string },
): Promise<ExchangeResult> {
  return postOAuth<ExchangeResult>(
    io,
    '/v1/oauth/token',
    {
      grant_type: TOKEN_EXCHANGE,
      subject_token: subject,
      // RFC 8693 §2.1: required. A task token is a JWT.
      subject_token_type: JWT_TOKEN_TYPE,
      ...(child.scope?.length ? { scope: child.scope.join(' ') } : {}),
      ...(child.ttl ? { ttl: child.ttl } : {}),
      ...(child.resource ? { resource: child.resource } : {}),
    },
    { form: true },
  );
}
