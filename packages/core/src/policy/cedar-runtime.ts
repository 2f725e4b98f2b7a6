// The one place custos loads and calls Cedar.
//
// We use the package's `nodejs` build, not its default `esm` build: the `esm`
// build imports the `.wasm` file as an ES module (`import * as wasm from
// "./cedar_wasm_bg.wasm"`), which Node 20/22 only support behind
// `--experimental-wasm-modules`. The `nodejs` build is CommonJS that reads the
// wasm synchronously with `fs` at load time, so it works under plain `node`,
// under vitest, and lets the engine be constructed and called synchronously.
//
// Its preparsed policy sets live in wasm memory keyed by an id, process-wide
// (per thread). There is no call to drop one; re-preparsing an id replaces it.
//
// Traps. Cedar recurses on policy trees inside the wasm, with no guard of its
// own: too deep a tree overflows its stack (a `RangeError` from V8, or a
// `WebAssembly.RuntimeError` when its in-memory stack runs out). The call is
// abandoned half-way, the module's stack pointer and locks are never restored,
// and every later call into the same instance fails. So every call goes
// through `guarded`: a call that throws instead of returning means the
// instance can no longer be trusted, and it is replaced by a fresh one (the
// CommonJS module is loaded again, which instantiates the wasm again; a few
// milliseconds). The failed call raises {@link CedarRuntimeFault}; callers
// decide what that means for their request (a refused write, a refused
// decision) and re-preparse their sets for the new instance, whose
// {@link cedarRuntimeGeneration} has changed. Cedar reports a bad policy as a
// returned `failure`; a throw is either a trap or an input the bindings could
// not take in, thrown from inside the wasm — which also abandons its stack
// (wasm-bindgen's `throw_str` runs no destructors). Either way the instance is
// replaced.

import { createRequire } from 'node:module';
import type * as Cedar from '@cedar-policy/cedar-wasm/nodejs';

export type {
  CedarValueJson,
  DetailedError,
  EntityJson,
  EntityUidJson,
  Expr,
  PolicyJson,
  StatefulAuthorizationCall,
} from '@cedar-policy/cedar-wasm/nodejs';

type CedarModule = typeof Cedar;

const requireCjs = createRequire(import.meta.url);
const MODULE_PATH = requireCjs.resolve('@cedar-policy/cedar-wasm/nodejs');

let cedar = requireCjs(MODULE_PATH) as CedarModule;
let generation = 0;

/** A call into Cedar failed inside its wasm; the runtime has been rebuilt, and this call's work is lost. */
export class CedarRuntimeFault extends Error {
  constructor(
    readonly operation: string,
    options: { cause: unknown },
  ) {
    super(`Cedar runtime fault in ${operation}`, options);
    this.name = 'CedarRuntimeFault';
  }
}

/** What a listener learns about a rebuild: never the input that caused it. */
export interface CedarRuntimeRebuild {
  /** The Cedar function that failed (`validate`, `statefulIsAuthorized`, …). */
  operation: string;
  /** The kind of failure: `RuntimeError` (a wasm trap), `RangeError` (stack overflow), … */
  error: string;
  /** The engine's own message for a trap or stack overflow (fixed text, e.g. "memory access out of bounds"). */
  message?: string;
  /** The new runtime's generation. */
  generation: number;
}

const listeners = new Set<(event: CedarRuntimeRebuild) => void>();

/**
 * Calls `listener` after every rebuild of the Cedar runtime (for the log).
 * Returns a function that removes it.
 */
export function onCedarRuntimeRebuild(listener: (event: CedarRuntimeRebuild) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Changes each time the runtime is rebuilt. A preparsed policy set belongs to
 * one generation: after a change, its id means nothing to the new runtime.
 */
export function cedarRuntimeGeneration(): number {
  return generation;
}

function rebuild(operation: string, cause: unknown): void {
  delete requireCjs.cache[MODULE_PATH];
  cedar = requireCjs(MODULE_PATH) as CedarModule;
  generation++;
  // The message of a trap or overflow is the engine's fixed text; anything
  // else might quote input, so only its class name is passed on.
  const trap = cause instanceof RangeError || (cause instanceof Error && cause.name === 'RuntimeError');
  const error = cause instanceof Error ? cause.name : typeof cause;
  const event: CedarRuntimeRebuild = {
    operation,
    error,
    ...(trap ? { message: (cause as Error).message.slice(0, 120) } : {}),
    generation,
  };
  for (const listener of listeners) {
    try {
      listener(event);
    } catch {
      // A failing logger must not turn a recovered fault into a new one.
    }
  }
}

function guarded<K extends keyof CedarModule>(operation: K): CedarModule[K] {
  const call = (...args: unknown[]): unknown => {
    try {
      return (cedar[operation] as (...a: unknown[]) => unknown)(...args);
    } catch (cause) {
      try {
        rebuild(operation, cause);
      } catch {
        // Loading failed too (e.g. the caller is itself deep in the stack):
        // the old instance stays, fails again on the next call, and that call
        // rebuilds. This one is refused either way.
      }
      throw new CedarRuntimeFault(operation, { cause });
    }
  };
  return call as CedarModule[K];
}

export const validate = guarded('validate');
export const policySetTextToParts = guarded('policySetTextToParts');
export const policyToJson = guarded('policyToJson');
export const preparsePolicySet = guarded('preparsePolicySet');
export const statefulIsAuthorized = guarded('statefulIsAuthorized');
