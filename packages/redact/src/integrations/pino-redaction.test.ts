import { Writable } from 'node:stream';
import pino, { type LoggerOptions } from 'pino';
import { describe, expect, it } from 'vitest';
import { createRedactor } from '../redactor.js';
import { Fake, fakeCredential } from '../test-support/fake-credentials.js';
import { pinoRedaction } from './pino-redaction.js';

const fake = new Fake(17);
// Alphanumeric only, so that redacting a JSON line and redacting the values
// before they are serialised are bound to give the same text.
const secret = fake.chars(24);
const [, ghToken] = fakeCredential['github-token']!(fake);
const redactor = createRedactor({ secrets: [{ name: 'task', value: secret }] });

/** The lines one pino logger writes for `log`, with the given options. */
function capture(options: LoggerOptions, log: (logger: pino.Logger) => void): string[] {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  log(pino({ base: null, timestamp: false, ...options }, sink));
  return lines;
}

/**
 * The promise of #12: pino's output with the redaction options equals pino's
 * own output for the same call, with the secrets replaced. `log` must log
 * errors built beforehand, so both runs see the same stacks.
 */
function expectSameAsPinoWithSecretsReplaced(log: (logger: pino.Logger) => void, options: LoggerOptions = {}) {
  const plain = capture(options, log);
  const redacted = capture({ ...options, ...pinoRedaction(redactor) }, log);
  expect(plain.join('')).toContain(secret); // the case does carry a secret
  expect(redacted.join('')).not.toContain(secret);
  expect(redacted.join('')).not.toContain(ghToken);
  expect(redacted.map((l) => JSON.parse(l))).toEqual(plain.map((l) => JSON.parse(redactor.redact(l))));
}

class UpstreamError extends Error {
  readonly status = 502;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

const withCause = () =>
  Object.assign(
    new Error(`upstream refused ${secret}`, {
      cause: new TypeError(`bad header ${secret}`, { cause: new UpstreamError(`gateway said ${secret}`) }),
    }),
    { code: 'E_UPSTREAM', detail: `retried with ${ghToken}` },
  );

describe('pino integration keeps pino’s error format (regression #12)', () => {
  it('an err with a cause chain keeps its type, message and stack with causes, and own properties', () => {
    const error = withCause();
    expectSameAsPinoWithSecretsReplaced((l) => l.error(error));
    const [line] = capture(pinoRedaction(redactor), (l) => l.error(error));
    const err = JSON.parse(line!).err;
    expect(err.type).toBe('Error');
    expect(err.message).toBe(
      'upstream refused [REDACTED:task]: bad header [REDACTED:task]: gateway said [REDACTED:task]',
    );
    expect(err.stack).toContain('caused by: TypeError: bad header [REDACTED:task]');
    expect(err.stack).toContain('caused by: UpstreamError: gateway said [REDACTED:task]');
    expect(err.code).toBe('E_UPSTREAM');
  });

  it('err given with a message, and errors under other keys (serialised by JSON.stringify, as pino does)', () => {
    const [a, b, c] = [withCause(), withCause(), withCause()];
    expectSameAsPinoWithSecretsReplaced((l) => {
      l.error({ err: a }, `while calling with ${secret}`);
      l.warn({ failure: b, list: [c] }, 'other keys');
    });
  });

  it('an AggregateError keeps aggregateErrors, each with its own type and cause', () => {
    const third = Object.assign(new Error('third'), { detail: `with ${ghToken}` });
    const error = new AggregateError(
      [new RangeError(`first ${secret}`), new UpstreamError('second', { cause: new Error(`root ${secret}`) }), third],
      `all failed for ${secret}`,
      { cause: new Error(`outer cause ${secret}`) },
    );
    expectSameAsPinoWithSecretsReplaced((l) => l.error(error));
    // A secret-named property of a member is masked whatever it holds.
    Object.assign(third, { token: 'plain-looking' });
    const err = JSON.parse(capture(pinoRedaction(redactor), (l) => l.error(error))[0]!).err;
    expect(err.type).toBe('AggregateError');
    expect(err.aggregateErrors.map((e: { type: string }) => e.type)).toEqual(['RangeError', 'UpstreamError', 'Error']);
    expect(err.aggregateErrors[1].message).toBe('second: root [REDACTED:task]');
    expect(err.aggregateErrors[2].detail).toBe('with [REDACTED:github-token]');
    expect(err.aggregateErrors[2].token).toBe('[REDACTED:token]');
  });

  it('pino’s errWithCause serialiser keeps its nested cause objects', () => {
    const error = withCause();
    expectSameAsPinoWithSecretsReplaced((l) => l.error(error), {
      serializers: { err: pino.stdSerializers.errWithCause },
    });
    const [line] = capture(
      { serializers: { err: pino.stdSerializers.errWithCause }, ...pinoRedaction(redactor) },
      (l) => l.error(error),
    );
    const err = JSON.parse(line!).err;
    expect(err.cause.type).toBe('TypeError');
    expect(err.cause.cause.type).toBe('UpstreamError');
    expect(err.cause.cause.status).toBe(502);
    expect(err.cause.cause.message).toBe('gateway said [REDACTED:task]');
  });

  it('a circular cause and a DOMException (whose getters check their receiver) log as pino logs them', () => {
    const circular = new Error(`loop ${secret}`);
    circular.cause = circular;
    const abort = new DOMException('This operation was aborted', 'AbortError');
    expectSameAsPinoWithSecretsReplaced((l) => {
      l.error(circular);
      l.error({ err: abort }, `aborted ${secret}`);
    });
  });

  it('masks secret-named properties of an error, and changes nothing else', () => {
    const error = Object.assign(new Error('request failed'), {
      password: 'hunter2',
      config: { url: 'https://api.example.test/v1', headers: { Authorization: 'Bearer abc' } },
    });
    const [plain] = capture({}, (l) => l.error(error));
    const [redacted] = capture(pinoRedaction(redactor), (l) => l.error(error));
    const expected = JSON.parse(plain!);
    expected.err.password = '[REDACTED:password]';
    expected.err.config.headers.Authorization = '[REDACTED:Authorization]';
    expect(JSON.parse(redacted!)).toEqual(expected);
  });

  it('leaves the logged error itself untouched', () => {
    const err = withCause();
    const before = { message: err.message, stack: err.stack, keys: Reflect.ownKeys(err) };
    capture(pinoRedaction(redactor), (l) => l.error(err));
    expect({ message: err.message, stack: err.stack, keys: Reflect.ownKeys(err) }).toEqual(before);
  });
});
