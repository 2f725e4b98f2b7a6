import { randomBytes } from 'node:crypto';
import { CustosError } from '../errors/index.js';
import type { EngineService } from '../leases/engine-service.js';
import type { SecretData } from '../secrets/secret-types.js';
import type { RotatorConfig } from './rotation-types.js';

/** One rotation strategy: make the next value, apply it outside custos, check it took. */
export interface Rotator {
  next(current: SecretData | undefined): SecretData;
  apply(path: string, version: number, next: SecretData): Promise<void>;
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
        apply: async (_path, _version, next) => {
          const engine = await engines.open(config.engine);
          await engine.setPassword(config.username, next[field] as string);
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
