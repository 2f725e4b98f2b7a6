/**
 * Redacts what is read through it: a property's value on its way out. Strings
 * come back redacted, objects as redacted copies (or views), secret-named
 * keys masked.
 */
export type RedactRead = (key: string, value: unknown) => unknown;

/**
 * A read-only, redacting view of an Error, for serialisers that must see the
 * real thing. A copy cannot be that: pino's `err` serialiser reports
 * `err.constructor.name` as the type, follows the non-enumerable `cause` and
 * `errors` (AggregateError), and walks inherited enumerable properties; and
 * some errors (DOMException, errors with private fields) have getters that
 * work only on the original object. So the view is a Proxy over the original:
 * prototype, keys, enumerability, getters and `instanceof` are the
 * original's; only the values that come out are redacted, lazily, at the
 * moment a serialiser reads them.
 *
 * - Getters run against the original (`receiver` is the target), so brand
 *   checks pass.
 * - Symbol-keyed reads pass through unchanged: they are runtime bookkeeping
 *   (pino tags errors it is visiting with a symbol), never serialised as JSON.
 * - Functions pass through, except `toJSON`, whose result is redacted too.
 * - Writes and deletes reach the original, as they would without the view
 *   (pino sets and deletes its visiting tag).
 *
 * What it does not hide: anything read from the original itself, or through
 * introspection that bypasses proxies (`util.inspect` shows the target). It is
 * meant for serialisers, which read properties.
 */
export function redactingErrorView<E extends object>(error: E, read: RedactRead): E {
  return new Proxy(error, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof key === 'symbol') return value;
      if (typeof value === 'function') {
        if (key !== 'toJSON') return value;
        return (...args: unknown[]) => read('', (value as (...a: unknown[]) => unknown).apply(target, args));
      }
      return read(key, value);
    },
    getOwnPropertyDescriptor(target, key) {
      const descriptor = Reflect.getOwnPropertyDescriptor(target, key);
      // A proxy must report a non-configurable property exactly as it is; an
      // Error's own properties (message, stack, cause, errors) are configurable.
      if (descriptor === undefined || typeof key === 'symbol' || !descriptor.configurable) return descriptor;
      if (!('value' in descriptor) || typeof descriptor.value === 'function') return descriptor;
      return { ...descriptor, value: read(key, descriptor.value) };
    },
  });
}
