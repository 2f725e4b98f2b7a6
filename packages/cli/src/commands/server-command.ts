import { isatty } from 'node:tty';
import {
  createLogger,
  formatPrettyLogLine,
  LogDestination,
  resolveServerConfig,
  type ServerFlags,
  startServer,
} from '@custos/server';
import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { collectList } from '../option-parsers.js';
import { formatServerBanner } from '../server-banner.js';

/** `custos server [--dev] [--data DIR] [--listen HOST:PORT] [--config FILE] [--log-format json|pretty]`. */
export function registerServerCommand(program: Command, io: CliIo): void {
  program
    .command('server')
    .description('run the custos server (default: --dev, SQLite and the dev seal under ./.custos/)')
    .option('--dev', 'embedded default: SQLite, dev seal, auto-initialise and auto-unseal')
    .option('--data <dir>', 'data directory (default ./.custos)')
    .option('--listen <host:port>', 'listen address (default 127.0.0.1:8420)')
    .option('--config <file>', 'JSON config file (storage, seal, audit, tls)')
    .option('--tls-listen <host:port>', 'also listen with TLS for mTLS logins (certificate from the internal CA)')
    .option(
      '--proxy-listen <host:port>',
      'serve the credential proxy (/u/NAME/…) here; --dev: 127.0.0.1:8421 unless --listen is given',
    )
    .option(
      '--decoy-db-listen <host:port>',
      'serve a decoy PostgreSQL endpoint for db-url honeytokens: every login attempt on it raises a critical alert',
    )
    .option(
      '--migrate-seal',
      'migrate a dev or Shamir store to the wrapped seal in --config (pkcs11, …): the dev key file is read once, or Shamir shares are asked for by operator unseal',
    )
    .option(
      '--create-seal-key',
      'first start of a wrapped seal: create the configured HSM key (non-extractable) if absent',
    )
    .option('--log-format <format>', 'json or pretty (default: pretty with a banner at a terminal, else json)')
    .option(
      '--egress-allow <entry>',
      'let outbound calls reach this loopback/private destination: 127.0.0.1, 10.0.0.0/8, db.internal:5432, *.corp.example (repeatable, comma-separated)',
      collectList,
    )
    .action(async (flags: ServerFlags) => {
      const config = resolveServerConfig(flags, io.cwd);
      // The log goes to fd 1 itself (not through io.stdout): it must never
      // block, which a stream's buffering and pino's writer cannot promise.
      const terminal = isatty(1);
      const pretty = (config.logFormat ?? (terminal ? 'pretty' : 'json')) === 'pretty';
      const color = pretty && terminal && !io.env.NO_COLOR;
      const log = new LogDestination(pretty ? { format: (line) => formatPrettyLogLine(line, { color }) } : {});
      const logger = createLogger(config.logLevel, log);
      const server = await startServer(config, logger, { log });
      const status = await server.node.status();
      if (pretty) {
        log.writeText(
          formatServerBanner({
            address: server.address,
            version: server.node.version,
            seal: config.seal,
            initialized: status.initialized,
            sealed: status.sealed,
            dataDir: config.dataDir,
            cwd: io.cwd,
            // `npm start` users have no `custos` on their PATH, but npx finds the workspace's.
            cli: io.env.npm_lifecycle_event ? 'npx custos' : 'custos',
            ...(server.proxy ? { proxyAddress: server.proxy.address } : {}),
          }),
        );
      }
      if (server.proxy) logger.info({ address: server.proxy.address }, 'credential proxy listening');
      logger.info(
        { address: server.address, storage: config.storage.split(':')[0], seal: config.seal, sealed: status.sealed },
        'custos listening',
      );
      // Graceful shutdown: in-flight requests finish, audit is flushed and
      // sealed with a checkpoint, storage is closed. A second signal ends the
      // process at once (the handlers are `once`).
      await new Promise<void>((resolveStop) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'shutting down');
          server.close().then(resolveStop, (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            process.exitCode = 1;
            resolveStop();
          });
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      // Held log lines get one last try; the process does not wait for a disk.
      log.close();
    });
}
