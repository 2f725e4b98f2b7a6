// The one place custos loads Cedar.
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

export type {
  CedarValueJson,
  DetailedError,
  EntityJson,
  EntityUidJson,
  Expr,
  PolicyJson,
  StatefulAuthorizationCall,
} from '@cedar-policy/cedar-wasm/nodejs';
export {
  policySetTextToParts,
  policyToJson,
  preparsePolicySet,
  statefulIsAuthorized,
  validate,
} from '@cedar-policy/cedar-wasm/nodejs';
