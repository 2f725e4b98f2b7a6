import { formatDuration, isCustosError } from '@custos/core';
import { Command, CommanderError } from 'commander';
import { CliError, type CliIo, EXIT, processIo } from './cli-io.js';
import { registerAlertsCommand } from './commands/alerts-command.js';
import { registerAuditCommand } from './commands/audit-command.js';
import { registerAuthJwtCommand } from './commands/auth-jwt-command.js';
import { registerBootstrapCommand } from './commands/bootstrap-command.js';
import { registerCaCommand } from './commands/ca-command.js';
import { registerCertCommand } from './commands/cert-command.js';
import { registerCredsCommand } from './commands/creds-command.js';
import { registerEngineCommand } from './commands/engine-command.js';
import { registerHoneytokenCommand } from './commands/honeytoken-command.js';
import { registerLeaseCommand } from './commands/lease-command.js';
import { registerLoginCommand } from './commands/login-command.js';
import { registerMcpCommand } from './commands/mcp-command.js';
import { registerOperatorCommand } from './commands/operator-command.js';
import { registerPolicyCommand } from './commands/policy-command.js';
import { registerRedactCommand } from './commands/redact-command.js';
import { registerRequestCommand } from './commands/request-command.js';
import { registerResourceCommand } from './commands/resource-command.js';
import { registerRoleCommand } from './commands/role-command.js';
import { registerRunCommand } from './commands/run-command.js';
import { registerScanCommand } from './commands/scan-command.js';
import { registerSecretCommand } from './commands/secret-command.js';
import { registerSecretRotateCommand } from './commands/secret-rotate-command.js';
import { registerServerCommand } from './commands/server-command.js';
import { registerSourceCommand } from './commands/source-command.js';
import { registerTaskCommand } from './commands/task-command.js';
import { registerTokenCommand } from './commands/token-command.js';
import { registerUpstreamCommand } from './commands/upstream-command.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, resolveRequestTimeout } from './request-timeout.js';

/** Builds the `custos` command with every subcommand. */
export function createProgram(given: CliIo = processIo()): Command {
  // The commands share this object: the global options are put on it before one runs.
  const io: CliIo = { ...given };
  const program = new Command('custos')
    .description('custos — secrets control plane for multi-agent AI systems')
    .version('0.1.0')
    .option(
      '--timeout <duration>',
      `how long to wait for the server's answer (10s, 2m; 0: no limit; default CUSTOS_TIMEOUT, else ${formatDuration(DEFAULT_REQUEST_TIMEOUT_MS)})`,
    )
    // Program options only before the subcommand, so `secret get --version 2` is the secret's version.
    .enablePositionalOptions()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride()
    .hook('preAction', () => {
      const { timeout } = program.opts<{ timeout?: string }>();
      if (timeout === undefined) return;
      resolveRequestTimeout({ env: {}, requestTimeout: timeout }); // a bad flag fails now, whatever the command
      io.requestTimeout = timeout;
    });
  registerServerCommand(program, io);
  registerOperatorCommand(program, io);
  registerSecretCommand(program, io);
  registerSecretRotateCommand(program, io);
  registerPolicyCommand(program, io);
  registerTokenCommand(program, io);
  registerRoleCommand(program, io);
  registerBootstrapCommand(program, io);
  registerLoginCommand(program, io);
  registerTaskCommand(program, io);
  registerAuthJwtCommand(program, io);
  registerCertCommand(program, io);
  registerCaCommand(program, io);
  registerAuditCommand(program, io);
  registerAlertsCommand(program, io);
  registerRequestCommand(program, io);
  registerHoneytokenCommand(program, io);
  registerEngineCommand(program, io);
  registerCredsCommand(program, io);
  registerUpstreamCommand(program, io);
  registerSourceCommand(program, io);
  registerResourceCommand(program, io);
  registerLeaseCommand(program, io);
  registerRunCommand(program, io);
  registerMcpCommand(program, io);
  registerRedactCommand(program, io);
  registerScanCommand(program, io);
  return program;
}

/**
 * Runs the CLI and returns the exit code. Every failure is one line on
 * stderr, `custos: CODE message`, never a stack.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const program = createProgram(io);
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with code 0.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof CliError) {
      io.stderr.write(`custos: ${error.code} ${error.message}\n`);
      return error.exitCode;
    }
    if (isCustosError(error)) {
      io.stderr.write(`custos: ${error.code} ${error.message}\n`);
      return EXIT.failed;
    }
    const code = (error as NodeJS.ErrnoException)?.code;
    io.stderr.write(
      `custos: CUSTOS_ERR_LOCAL ${code ? `${code} ` : ''}${(error as Error)?.message ?? String(error)}\n`,
    );
    return EXIT.usage;
  }
}
