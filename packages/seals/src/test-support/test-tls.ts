import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost. */
export interface TestTls {
  /** PEM of the CA: what a client trusts (`tlsOptions.ca`, or a file for NODE_EXTRA_CA_CERTS). */
  readonly ca: string;
  /** The CA written to a file, for a child process's NODE_EXTRA_CA_CERTS. */
  readonly caFile: string;
  readonly cert: string;
  readonly key: string;
  dispose(): void;
}

/**
 * Generates, at test time, a CA (P-256, one day) and a server certificate
 * for `127.0.0.1` and `localhost`, with the `openssl` command line (Node has
 * no API to issue certificates). Nothing is checked in: every run has its
 * own keys, which live in a temporary directory until {@link TestTls.dispose}.
 *
 * Why TLS at all for a local test server: the Azure SDK refuses to send a
 * bearer token over plain http (its bearer-token policy throws on a non-https
 * URL), and MSAL refuses a non-https authority. So the Key Vault and token
 * servers speak TLS, and the clients trust this CA — in process through the
 * Azure pipeline's `tlsOptions.ca`, in a custos server child process through
 * NODE_EXTRA_CA_CERTS — never by turning verification off.
 */
export function createTestTls(): TestTls {
  const dir = mkdtempSync(join(tmpdir(), 'custos-test-tls-'));
  const p = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('ca.key'));
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    p('ca.key'),
    '-sha256',
    '-days',
    '1',
    '-subj',
    '/CN=custos test CA (throwaway)',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    p('ca.pem'),
  );
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('server.key'));
  openssl('req', '-new', '-key', p('server.key'), '-subj', '/CN=localhost', '-out', p('server.csr'));
  writeFileSync(
    p('server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-sha256',
    '-extfile',
    p('server.ext'),
    '-out',
    p('server.pem'),
  );
  // PKCS#8 for Node's TLS (the EC "traditional" form works too; this is the common one).
  openssl('pkcs8', '-topk8', '-nocrypt', '-in', p('server.key'), '-out', p('server.pk8'));
  return {
    ca: readFileSync(p('ca.pem'), 'utf8'),
    caFile: p('ca.pem'),
    cert: readFileSync(p('server.pem'), 'utf8'),
    key: readFileSync(p('server.pk8'), 'utf8'),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
