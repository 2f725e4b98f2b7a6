import { randomBytes } from 'node:crypto';
import { egressFetch } from '../egress/egress-fetch.js';
import { type EgressPolicy, isEgressRefusal } from '../egress/egress-policy.js';
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

/** What rotators reach the outside through. */
export interface RotatorDeps {
  engines: Pick<EngineService, 'open' | 'assertRotatable'>;
  /** Every webhook call obeys it. */
  egress: EgressPolicy;
}

/** Builds the rotator of a config. */
export function createRotator(config: RotatorConfig, { engines, egress }: RotatorDeps): Rotator {
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
          // Again at every run, scheduled ones included: the engine's list may
          // have lost this user since the policy was set.
          await engines.assertRotatable(config.engine, config.username);
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
            // Only what the receiver needs to apply this rotation: the other
            // fields of the secret are none of its business.
            const response = await egressFetch(egress, config.url, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ path, version, field, value: next[field] }),
            });
            const body = (await response.json().catch(() => null)) as { ack?: unknown } | null;
            ok = response.ok && body?.ack === true;
          } catch (error) {
            // A refused destination says so (the operator can fix the
            // allow-list); any other failure is "did not acknowledge".
            if (isEgressRefusal(error)) throw error;
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
