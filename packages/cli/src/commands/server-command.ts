import { createLogger, resolveServerConfig, type ServerFlags, startServer } from '@custos/server';
import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { collectList } from '../option-parsers.js';

/** `custos server [--dev] [--data DIR] [--listen HOST:PORT] [--config FILE]`. */
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
      '--egress-allow <entry>',
      'let outbound calls reach this loopback/private destination: 127.0.0.1, 10.0.0.0/8, db.internal:5432, *.corp.example (repeatable, comma-separated)',
      collectList,
    )
    .action(async (flags: ServerFlags) => {
      const config = resolveServerConfig(flags, io.cwd);
      const logger = createLogger(config.logLevel);
      const server = await startServer(config, logger);
      const status = await server.node.status();
      logger.info(
        { address: server.address, storage: config.storage.split(':')[0], seal: config.seal, sealed: status.sealed },
        'custos listening',
      );
      // Graceful shutdown: in-flight requests finish, audit is flushed and
      // sealed with a checkpoint, storage is closed.
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
    });
}
