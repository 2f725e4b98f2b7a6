import type { Redactor } from '../redactor.js';

/** The subset of pino options this integration sets; spread it into `pino({...})`. */
export interface PinoRedactionOptions {
  formatters: { log: (object: Record<string, unknown>) => Record<string, unknown> };
  hooks: { streamWrite: (line: string) => string };
}

/**
 * pino options that redact every log line of a process: `formatters.log`
 * masks secret-named keys structurally (so `{ password: 'x' }` is masked even
 * when 'x' is not a known secret), and `hooks.streamWrite` scans the final
 * serialised line, which also covers `msg`, bindings and serialisers' output.
 * Markers contain no quote or backslash, so lines stay valid JSON.
 *
 * pino runs `formatters.log` before its serialisers, so Errors are not
 * copied into plain objects there (pino's `err` serialiser would then report
 * `type: "Object"` and lose the `cause` chain): they are passed on as
 * redacting views of the originals, and pino formats them exactly as it
 * formats any error — type, message and stack with causes, `aggregateErrors`,
 * own and inherited enumerable properties — with secrets replaced.
 *
 * Spread it last, or merge by hand if you set your own formatters or hooks.
 *
 * @example
 * const logger = pino({ level: 'info', ...pinoRedaction(redactor) });
 */
export function pinoRedaction(redactor: Redactor): PinoRedactionOptions {
  return {
    formatters: { log: (object) => redactor.redactObject(object, { keepErrors: true }) },
    hooks: { streamWrite: (line) => redactor.redact(line) },
  };
}
