import { chmodSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit, table } from '../output.js';

interface IssuedCertificate {
  cert_pem: string;
  key_pem: string;
  ca_pem: string;
  serial: string;
  spiffe_id: string;
  expire_time: string;
}

interface IssueOptions {
  role: string;
  ttl: string;
  certOut?: string;
  keyOut?: string;
  caOut?: string;
  json?: boolean;
}

/**
 * Writes a file with exactly `mode`. An existing file is narrowed before the
 * write, so a private key never sits in a file others can read, not even
 * for a moment; the final chmod undoes whatever the umask did.
 */
function writeWithMode(file: string, text: string, mode: number): void {
  try {
    chmodSync(file, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  writeFileSync(file, text, { mode });
  chmodSync(file, mode);
}

/** `custos cert issue|revoke`: mTLS client certificates from custos’s internal CA. */
export function registerCertCommand(program: Command, io: CliIo): void {
  const cert = program.command('cert').description('mTLS client certificates for agents (custos’s internal CA)');

  cert
    .command('issue')
    .description('issue a short-lived client certificate (SPIFFE id) for an agent of a role')
    .requiredOption('--role <role>', 'the role the certificate logs in as')
    .option('--ttl <duration>', 'validity, at most 30d', '1h')
    .option('--cert-out <file>', 'write the certificate here (needs --key-out)')
    .option('--key-out <file>', 'write the private key here, mode 0600 (needs --cert-out)')
    .option('--ca-out <file>', 'write the CA certificate here (to trust the mTLS listener)')
    .option('--json', 'JSON output (the PEMs, serial, spiffe_id, expire_time)')
    .action(async (opts: IssueOptions) => {
      // The private key is shown once: refuse a command line that would write
      // the certificate and drop its key, or the other way round.
      if (!opts.certOut !== !opts.keyOut) {
        throw new CliError('CUSTOS_ERR_USAGE', '--cert-out and --key-out go together', EXIT.usage);
      }
      const issued = await new CustosClient(io).request<IssuedCertificate>(
        'POST',
        `/v1/roles/${encodeURIComponent(opts.role)}/certs`,
        { ttl: opts.ttl },
      );
      if (opts.caOut) writeWithMode(opts.caOut, issued.ca_pem, 0o644);
      if (!opts.certOut) {
        // Nowhere to write the pair: the PEMs go to stdout as JSON, for the caller to place.
        emit(io, true, issued, () => '');
        return;
      }
      writeWithMode(opts.keyOut!, issued.key_pem, 0o600);
      writeWithMode(opts.certOut, issued.cert_pem, 0o644);
      const { key_pem: _key, ...metadata } = issued;
      emit(
        io,
        opts.json,
        { ...metadata, files: { cert: opts.certOut ?? null, key: opts.keyOut ?? null, ca: opts.caOut ?? null } },
        () =>
          table([
            ['serial', issued.serial],
            ['spiffe_id', issued.spiffe_id],
            ['expires', issued.expire_time],
            ['cert', opts.certOut],
            ['key', opts.keyOut],
            ['ca', opts.caOut],
          ]),
      );
    });

  cert
    .command('revoke <serial>')
    .description('revoke a client certificate by serial; its logins are refused from now on')
    .option('--json', 'JSON output')
    .action(async (serial: string, opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ revoked: string }>('POST', '/v1/auth/cert/revoke', {
        serial,
      });
      emit(io, opts.json, result, () => `Revoked certificate ${serial}`);
    });
}
