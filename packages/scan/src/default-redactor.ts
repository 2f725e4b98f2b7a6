import { createRedactor, type KnownSecret } from '@custos/redact';
import type { FindAllSource } from './secret-matcher.js';

/**
 * The redaction package's detectors (all of them) plus the given known
 * values: the scanner has no rules of its own.
 */
export function defaultRedactor(secrets: Iterable<KnownSecret> = []): FindAllSource {
  return createRedactor({ secrets, detectors: 'all' });
}
