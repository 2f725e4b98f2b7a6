import { CustosError } from '@custos/core';
import type * as P from 'pkcs11js';
import pkcs11js from 'pkcs11js';

/**
 * One loaded and initialised PKCS#11 module per library path, shared by
 * every wrapper in the process. A module may be initialised only once per
 * process (C_Initialize a second time is CKR_CRYPTOKI_ALREADY_INITIALIZED),
 * and `rotate-seal` opens a second wrapper on the same library while the
 * first is still in use, hence the reference count.
 */
export interface Pkcs11Module {
  readonly pkcs11: P.PKCS11;
  /** Drops this reference; the last one finalises the module. */
  release(): void;
  /**
   * Finalises and initialises the module again, for every holder. Used to
   * recover after the token went away: some modules only see a token that
   * came back after a fresh C_Initialize. Every session of the module is
   * invalid afterwards, so holders reopen theirs.
   */
  reinitialize(): void;
}

interface Loaded {
  readonly pkcs11: P.PKCS11;
  refs: number;
}

const modules = new Map<string, Loaded>();

/** Loads (or shares) the module at `library`. `CUSTOS_ERR_HSM_LIBRARY` when it cannot be loaded or initialised. */
export function acquirePkcs11Module(library: string): Pkcs11Module {
  let loaded = modules.get(library);
  if (loaded === undefined) {
    const pkcs11 = new pkcs11js.PKCS11();
    try {
      pkcs11.load(library);
    } catch {
      // The loader's message quotes dlopen's, which is harmless but says
      // nothing the operator needs beyond the path they configured.
      throw new CustosError('CUSTOS_ERR_HSM_LIBRARY', `Could not load ${library}.`);
    }
    initialize(pkcs11, library);
    loaded = { pkcs11, refs: 0 };
    modules.set(library, loaded);
  }
  loaded.refs++;
  const held = loaded;
  let released = false;
  return {
    pkcs11: held.pkcs11,
    release() {
      if (released) return;
      released = true;
      held.refs--;
      if (held.refs > 0) return;
      modules.delete(library);
      try {
        held.pkcs11.C_Finalize();
      } catch {
        // Already gone: nothing to release.
      }
      try {
        held.pkcs11.close();
      } catch {
        // Unloading is best effort.
      }
    },
    reinitialize() {
      try {
        held.pkcs11.C_Finalize();
      } catch {
        // Finalising a module whose token is gone may fail; initialising again is what matters.
      }
      initialize(held.pkcs11, library);
    },
  };
}

function initialize(pkcs11: P.PKCS11, library: string): void {
  try {
    pkcs11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) return;
    throw new CustosError('CUSTOS_ERR_HSM_LIBRARY', `Could not initialise ${library}.`);
  }
}
