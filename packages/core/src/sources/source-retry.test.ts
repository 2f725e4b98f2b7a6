import { describe, expect, it } from 'vitest';
import { CustosError } from '../errors/index.js';
import { callSource, SOURCE_ATTEMPTS } from './source-retry.js';
import { SourceFault } from './source-types.js';

describe('callSource: bounded retry of throttling, errors that name the source only', () => {
  it('retries throttling up to the attempt limit, waiting Retry-After capped at 2 s', async () => {
    const waits: number[] = [];
    let calls = 0;
    const result = await callSource(
      'aws-prod',
      30_000,
      async () => {
        calls += 1;
        if (calls < SOURCE_ATTEMPTS) throw new SourceFault('throttled', calls === 1 ? 60_000 : undefined);
        return 'ok';
      },
      async (ms) => {
        waits.push(ms);
      },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(SOURCE_ATTEMPTS);
    expect(waits[0]).toBe(2_000);
    for (const w of waits) expect(w).toBeLessThanOrEqual(2_000);
  });

  it('persistent throttling ends in CUSTOS_ERR_SOURCE_THROTTLED after the limit', async () => {
    let calls = 0;
    const error = await callSource(
      's',
      30_000,
      async () => {
        calls += 1;
        throw new SourceFault('throttled');
      },
      async () => {},
    ).catch((e: unknown) => e);
    expect((error as CustosError).code).toBe('CUSTOS_ERR_SOURCE_THROTTLED');
    expect(calls).toBe(SOURCE_ATTEMPTS);
  });

  it('a wait that would pass the deadline is not taken', async () => {
    let calls = 0;
    const error = await callSource(
      's',
      1_000,
      async () => {
        calls += 1;
        throw new SourceFault('throttled', 1_500);
      },
      async () => {},
    ).catch((e: unknown) => e);
    expect((error as CustosError).code).toBe('CUSTOS_ERR_SOURCE_THROTTLED');
    expect(calls).toBe(1);
  });

  it('denial, not found and other failures are not retried, and the error names only the source', async () => {
    for (const [kind, expected] of [
      ['denied', 'CUSTOS_ERR_SOURCE_ACCESS_DENIED'],
      ['not_found', 'CUSTOS_ERR_NOT_FOUND'],
      ['no_credentials', 'CUSTOS_ERR_SOURCE_UNAVAILABLE'],
      ['failed', 'CUSTOS_ERR_SOURCE_UNAVAILABLE'],
      ['timeout', 'CUSTOS_ERR_SOURCE_TIMEOUT'],
    ] as const) {
      let calls = 0;
      const error = (await callSource('aws-prod', 5_000, async () => {
        calls += 1;
        throw new SourceFault(kind);
      }).catch((e: unknown) => e)) as CustosError;
      expect(error.code, kind).toBe(expected);
      expect(calls).toBe(1);
    }
    const denied = (await callSource('aws-prod', 5_000, async () => {
      throw new SourceFault('denied');
    }).catch((e: unknown) => e)) as CustosError;
    expect(denied.message).toBe(`${new CustosError('CUSTOS_ERR_SOURCE_ACCESS_DENIED').message} Source "aws-prod".`);
  });

  it('an unknown error (an SDK error with a cloud message) becomes UNAVAILABLE without its message', async () => {
    const error = (await callSource('x', 5_000, async () => {
      throw new Error('User: arn:aws:iam::111122223333:role/custos is not authorized');
    }).catch((e: unknown) => e)) as CustosError;
    expect(error.code).toBe('CUSTOS_ERR_SOURCE_UNAVAILABLE');
    expect(error.message).not.toContain('111122223333');
  });
});
