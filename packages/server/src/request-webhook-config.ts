import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type AccessRequestNotice, type AlertWebhookOptions, ValidationError } from '@custos/core';
import type { Logger } from 'pino';

/** `requests.webhook` as the config file holds it. */
export interface RequestWebhookFile {
  url?: string;
  /** A file holding the HMAC signing key (at least 32 bytes). */
  secret_file?: string;
  /** The name of an environment variable holding the key instead. */
  secret_env?: string;
}

/** `requests.webhook` checked: the URL, and where the signing key is. */
export interface RequestWebhookConfig {
  url: string;
  secretFile?: string;
  secretEnv?: string;
}

/**
 * `requests.webhook` (docs/jit.md): checked at start, so a typo stops the
 * server rather than losing notifications. Configured by whoever writes the
 * config file — an operator — never through the API; the destination then
 * passes the egress policy like every outbound call.
 */
export function resolveRequestWebhook(
  webhook: RequestWebhookFile | undefined,
  cwd: string,
): RequestWebhookConfig | undefined {
  if (webhook === undefined) return undefined;
  const { url, secret_file: secretFile, secret_env: secretEnv } = webhook;
  if (typeof url !== 'string' || !URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new ValidationError('requests.webhook.url is an http(s) URL.');
  }
  // The receiver authenticates custos by the signature; credentials in the URL would only leak (logs, proxies).
  if (new URL(url).username || new URL(url).password) {
    throw new ValidationError('requests.webhook.url carries no credentials (the signature authenticates custos).');
  }
  if ((typeof secretFile === 'string') === (typeof secretEnv === 'string')) {
    throw new ValidationError('requests.webhook names its signing key with one of secret_file or secret_env.');
  }
  return typeof secretFile === 'string'
    ? { url, secretFile: resolve(cwd, secretFile) }
    : { url, secretEnv: secretEnv as string };
}

/**
 * The sink's options: the key read now (a missing or short key stops the
 * start), reports logged with counts and codes only — never a request.
 */
export function requestWebhookOptions(
  webhook: RequestWebhookConfig,
  logger: Pick<Logger, 'warn'>,
  env: NodeJS.ProcessEnv = process.env,
): Omit<AlertWebhookOptions<AccessRequestNotice>, 'format' | 'userAgent'> {
  let text: string | undefined;
  if (webhook.secretFile) {
    try {
      // A trailing newline (an editor's, `echo`'s) is not part of the key.
      text = readFileSync(webhook.secretFile, 'utf8').replace(/\r?\n$/, '');
    } catch {
      throw new ValidationError('requests.webhook.secret_file cannot be read.');
    }
  } else {
    text = env[webhook.secretEnv as string];
  }
  const secret = Buffer.from(text ?? '', 'utf8');
  if (secret.byteLength < 32) throw new ValidationError('requests.webhook signing key holds at least 32 bytes.');
  return {
    url: webhook.url,
    secret,
    onReport: (report) =>
      report.kind === 'dropping'
        ? logger.warn(
            { webhook: report.stats },
            'request webhook queue full: notifications dropped (requests stay listed)',
          )
        : logger.warn(
            { webhook: report.stats, status: report.status, code: report.code },
            'request webhook delivery given up',
          ),
  };
}
