import type { ScanErrorCode } from './scan-types.js';

/**
 * Thrown by a reader when the structure cannot be scanned further. The
 * dispatcher turns it into a per-file error entry; it never carries file
 * content, only a sentence about the structure.
 */
export class ScanFault extends Error {
  readonly code: ScanErrorCode;
  /** A spent per-file budget (time, total inflation): ends the whole file, so no reader catches it. */
  readonly fatal: boolean;
  constructor(code: ScanErrorCode, message: string, fatal = false) {
    super(message);
    this.name = 'ScanFault';
    this.code = code;
    this.fatal = fatal;
  }
}

/** Shorthand for the most common fault: the input ends before its structure says it should. */
export function truncated(what: string): ScanFault {
  return new ScanFault('SCAN_ERR_TRUNCATED', `${what} is truncated`);
}
