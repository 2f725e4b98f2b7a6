import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { CustosClient } from '../http-client.js';

/**
 * `custos ca export [--out FILE]`: custos's internal CA certificate (PEM) —
 * what a client trusts so that the credential proxy may intercept HTTPS to
 * the hosts its upstreams are bound to (forward mode), and what verifies the
 * mTLS listener. Public material: no token needed.
 */
export function registerCaCommand(program: Command, io: CliIo): void {
  const ca = program.command('ca').description('custos’s internal certificate authority');
  ca.command('export')
    .description('print the CA certificate (PEM) clients trust for the proxy’s forward mode and the mTLS listener')
    .option('--out <file>', 'write it to FILE (mode 0644) instead of stdout')
    .action(async (opts: { out?: string }) => {
      const { ca_pem } = await new CustosClient(io).request<{ ca_pem: string }>('GET', '/v1/auth/cert/ca');
      if (opts.out) {
        writeFileSync(resolve(io.cwd, opts.out), ca_pem, { mode: 0o644 });
        io.stdout.write(`Wrote the CA certificate to ${opts.out}\n`);
      } else {
        io.stdout.write(ca_pem.endsWith('\n') ? ca_pem : `${ca_pem}\n`);
      }
    });
}
