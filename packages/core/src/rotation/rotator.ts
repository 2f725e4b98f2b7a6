import { randomBytes } from 'node:crypto';
import { CustosError, isCustosError } from '../errors/index.js';
import type { EngineService } from '../leases/engine-service.js';
import type { SecretData } from '../secrets/secret-types.js';
import type { RotatorConfig } from './rotation-types.js';

/** One rotation strategy: make the next value, apply it outside custos, check it took. */
export interface Rotator {
  next(current: SecretData | undefined): SecretData;
  /** Throws (best `CUSTOS_ERR_ROTATION_FAILED` with a safe reason) when `next` did not take; the outside system then still uses `current`. */
  apply(path: string, version: number, next: SecretData, current: SecretData | undefined): Promise<void>;
}

const WEBHOOK_TIMEOUT_MS = 10_000;
const randomValue = (length: number) =>
  randomBytes(Math.ceil((length * 3) / 4))
    .toString('base64url')
    .slice(0, length);

/** Without a named field: the only field, else `password`, else `value`. */
function defaultField(current: SecretData | undefined): string {
  const fields = Object.keys(current ?? {});
  if (fields.length === 1) return fields[0] as string;
  return fields.includes('password') ? 'password' : 'value';
}

/** Builds the rotator of a config. */
export function createRotator(config: RotatorConfig, engines: EngineService): Rotator {
  switch (config.type) {
    case 'random': {
      return {
        next: (current) => ({
          ...(current ?? {}),
          [config.field ?? defaultField(current)]: randomValue(config.length ?? 32),
        }),
        apply: async () => undefined,
      };
    }
    case 'database': {
      const field = config.field ?? 'password';
      return {
        next: (current) => ({ ...(current ?? {}), username: config.username, [field]: randomValue(40) }),
        apply: async (_path, _version, next, current) => {
          const engine = await engines.open(config.engine);
          await engine.setPassword(config.username, next[field] as string);
          try {
            await engine.testCredential(config.username, next[field] as string);
          } catch (error) {
            // The user now has a password that does not work as expected:
            // put the old one back so what `current` says stays true.
            const old = current?.[field];
            const restored =
              typeof old === 'string' && old !== ''
                ? await engine.setPassword(config.username, old).then(
                    () => true,
                    () => false,
                  )
                : false;
            const why = isCustosError(error) ? error.message : 'The login test failed.';
            if (restored) throw new CustosError('CUSTOS_ERR_ROTATION_FAILED', `${why} The old password was put back.`);
            // The database now holds the pending value and nothing else does:
            // the pending version must be kept (not discarded) so an operator
            // can read it (`?version=N`) and recover the user.
            throw Object.assign(
              new CustosError(
                'CUSTOS_ERR_ROTATION_FAILED',
                `${why} The old password could not be put back; the pending version holds the password in effect.`,
              ),
              { pendingInEffect: true },
            );
          }
        },
      };
    }
    case 'webhook': {
      const field = config.field ?? 'value';
      return {
        next: (current) => ({ ...(current ?? {}), [field]: randomValue(32) }),
        apply: async (path, version, next) => {
          let ok = false;
          try {
            const response = await fetch(config.url, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ path, version, data: next }),
              signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
            });
            const body = (await response.json().catch(() => null)) as { ack?: unknown } | null;
            ok = response.ok && body?.ack === true;
          } catch {
            ok = false;
          }
          // The receiver's answer is not echoed: it could repeat the value.
          if (!ok)
            throw new CustosError('CUSTOS_ERR_ROTATION_FAILED', 'The webhook did not acknowledge the new value.');
        },
      };
    }
  }
}
