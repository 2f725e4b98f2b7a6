import { builtinDetectors } from './detectors/builtin-detectors.js';
import type { Detector } from './detectors/detector.js';
import type { Finding } from './finding.js';
import { type KnownSecretInput, normaliseKnownSecrets } from './known-secrets/known-secret-input.js';
import { RedactionEngine } from './matcher/redaction-engine.js';
import { compileReplacement, type Replacement } from './replacement/replacement-format.js';
import { EngineRedactionStream, type RedactionStream } from './stream/redaction-stream.js';
import { redactStructured, type StructuredOptions } from './structured/structured-redaction.js';

export interface RedactorOptions {
  /**
   * Exact values to hide: each a string (its marker is `[REDACTED:secret]`) or
   * `{ name, value }` (its marker shows `name`, which must not itself be
   * secret). Anything else throws a `TypeError` (code `ERR_INVALID_ARG_TYPE`)
   * that names the expected shape.
   */
  secrets?: Iterable<KnownSecretInput>;
  /** Pattern detectors: `'all'` (default) is `builtinDetectors`. */
  detectors?: readonly Detector[] | 'all' | 'none';
  /**
   * Known secrets shorter than this are not registered (default 8): a
   * 3-character value would mask every occurrence of those letters in prose.
   */
  minSecretLength?: number;
  /** Marker format; default `[REDACTED:{name}]`. See {@link Replacement}. */
  replacement?: Replacement;
}

export interface Redactor {
  /** `text` with every finding replaced by its marker. */
  redact(text: string): string;
  /** Non-overlapping findings, sorted by start. Values are secret: never log them. */
  findAll(text: string): Finding[];
  /**
   * A deep copy of `value` with strings scanned and the values of
   * secret-named keys (`password`, `token`, `authorization`…) masked whatever
   * they hold. The input is not modified.
   */
  redactObject<T>(value: T, options?: StructuredOptions): T;
  /** Incremental redaction for text arriving in pieces. */
  createStream(): RedactionStream;
  /** How many distinct forms of known secrets are registered. */
  readonly knownForms: number;
}

/**
 * Builds a redactor. Construction does the expensive work (encoding every
 * known secret and indexing the forms) once; use one redactor per set of
 * secrets.
 *
 * @throws TypeError (code `ERR_INVALID_ARG_TYPE`) when `secrets` is not a list
 * of strings or `{ name: string, value: string }` objects.
 *
 * @example
 * const r = createRedactor({ secrets: [{ name: 'db', value: process.env.DB_PASSWORD! }] });
 * console.log(r.redact(`connecting with ${process.env.DB_PASSWORD}`)); // connecting with [REDACTED:db]
 *
 * @example
 * // Bare values are fine too; their marker is [REDACTED:secret].
 * const quick = createRedactor({ secrets: [process.env.API_KEY!] });
 */
export function createRedactor(options: RedactorOptions = {}): Redactor {
  const detectors =
    options.detectors === undefined || options.detectors === 'all'
      ? builtinDetectors
      : options.detectors === 'none'
        ? []
        : options.detectors;
  const engine = new RedactionEngine(
    normaliseKnownSecrets(options.secrets),
    detectors,
    options.minSecretLength ?? 8,
    compileReplacement(options.replacement),
  );
  const redactor: Redactor = {
    redact: (text) => engine.render(text, engine.findAll(text)),
    findAll: (text) =>
      engine.findAll(text).map(({ kind, ruleId, start, end, value }) => ({ kind, ruleId, start, end, value })),
    redactObject: (value, structuredOptions) => redactStructured(value, engine, redactor, structuredOptions),
    createStream: () => new EngineRedactionStream(engine),
    knownForms: engine.known.size,
  };
  return redactor;
}
