import { request } from 'node:https';
import { CustosProtocolError, CustosTimeoutError, CustosUnreachableError } from './custos-errors.js';
import { apiError, parseJson } from './http-transport.js';
import { SDK_ROUTES } from './sdk-routes.js';

/** A client certificate from custos's CA (`custos cert issue`) and where to present it. */
export interface CertLoginCredentials {
  /** PEM. */
  readonly cert: string;
  /** PEM private key of the certificate. */
  readonly key: string;
  /** The CA that signed the server's certificate (PEM); default the system roots. */
  readonly ca?: string;
  /**
   * The mTLS listener, `https://host:port` (the CLI's `CUSTOS_TLS_ADDR`).
   * Default: the client's address, which must then be https.
   */
  readonly address?: string;
}

/**
 * `POST /v1/auth/cert/login` over HTTPS, presenting the client certificate.
 * fetch cannot present a client certificate, hence node:https (as the CLI).
 * The server is authenticated against `ca` or the system roots: the
 * certificate's private key proves the agent, and never travels.
 * Never retried: a login starts a task.
 */
export function certLogin(
  credentials: CertLoginCredentials,
  address: string,
  body: unknown,
  timeoutMs: number,
): Promise<unknown> {
  const url = new URL(SDK_ROUTES.certLogin.path, credentials.address ?? address);
  if (url.protocol !== 'https:') {
    return Promise.reject(new CustosProtocolError('certificate login needs an https:// (mTLS) address'));
  }
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const signal = AbortSignal.timeout(timeoutMs);
    const req = request(
      url,
      {
        method: 'POST',
        cert: credentials.cert,
        key: credentials.key,
        ...(credentials.ca ? { ca: credentials.ca } : {}),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        signal,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const parsed = parseJson(text);
          if (status < 200 || status >= 300) reject(apiError(status, parsed, []));
          else resolve(parsed);
        });
        res.on('error', (cause) => reject(signal.aborted ? new CustosTimeoutError(timeoutMs) : cause));
      },
    );
    req.on('error', (cause) =>
      reject(signal.aborted ? new CustosTimeoutError(timeoutMs) : new CustosUnreachableError(url.origin, { cause })),
    );
    req.end(payload);
  });
}
