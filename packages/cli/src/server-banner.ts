import { join, relative, sep } from 'node:path';

export interface ServerBannerInput {
  /** Where it listens, e.g. `http://127.0.0.1:8420`. */
  address: string;
  version: string;
  seal: 'dev' | 'shamir' | 'wrapped';
  initialized: boolean;
  sealed: boolean;
  dataDir: string;
  /** The directory the command runs in (the CLI finds `./.custos/root-token` from there). */
  cwd: string;
  /** How to call the CLI here: `custos`, or `npx custos` when started by `npm start`. */
  cli: string;
  /** The credential proxy's address, when it listens (`--proxy-listen`, on by default with `--dev`). */
  proxyAddress?: string;
}

/**
 * The few lines a person sees first when `custos server` runs at a terminal:
 * where it listens, where the root token is (never the token: it stays in
 * its 0600 file), how to point a shell at it, and what to try next.
 */
export function formatServerBanner(input: ServerBannerInput): string {
  const addr = clientAddress(input.address);
  const lines = ['', `  custos ${input.version} is listening on ${addr}`];
  if (input.proxyAddress) {
    lines.push(`  Credential proxy: ${clientAddress(input.proxyAddress)}/u/NAME/…  (agents send their task token)`);
  }
  const tokenFile = join(input.dataDir, 'root-token');
  const found = input.dataDir === join(input.cwd, '.custos');
  if (input.seal !== 'shamir') {
    lines.push(`  Root token:  ${displayPath(tokenFile, input.cwd)}  (mode 0600; never printed or logged)`);
  }
  lines.push('', '  In another terminal:', `    export CUSTOS_ADDR=${addr}`);
  if (input.seal !== 'shamir') {
    lines.push(
      found
        ? `    # in this directory the CLI reads the token itself; elsewhere:`
        : `    # the CLI does not find the token by itself for this data directory:`,
      `    export CUSTOS_TOKEN="$(cat ${shellQuote(tokenFile)})"`,
    );
  }
  if (!input.initialized) {
    lines.push(`    ${input.cli} operator init          # prints the unseal shares and the root token once`);
  } else if (input.sealed) {
    lines.push(`    ${input.cli} operator unseal        # once per key share, up to the threshold`);
  } else {
    lines.push(`    ${input.cli} secret put kv/hello greeting=world`, `    ${input.cli} secret get kv/hello`);
  }
  lines.push('', '  Stop with Ctrl-C. Log lines follow.', '', '');
  return lines.join('\n');
}

/** A wildcard listen address is not one a client can dial: show the loopback instead. */
function clientAddress(address: string): string {
  return address.replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://[::1]:');
}

function displayPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') && !rel.startsWith(sep) ? `.${sep}${rel}` : path;
}

/** Single-quoted for POSIX shells, so a data directory with spaces or `$` pastes safely. */
function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
