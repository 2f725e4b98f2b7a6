/**
 * The in-memory keyring: one 32-byte data key per term. The newest term is
 * the one new writes use; older terms stay to read older data. Keys are held
 * as Buffers (never strings) so {@link Keyring.zero} can wipe them.
 */
export class Keyring {
  readonly #keys = new Map<number, Buffer>();
  #active = 0;

  /** Takes ownership of `key` (it is zeroed by {@link zero}). A known term is not replaced. */
  add(term: number, key: Buffer): void {
    if (this.#keys.has(term)) {
      key.fill(0);
      return;
    }
    this.#keys.set(term, key);
    if (term > this.#active) this.#active = term;
  }

  get(term: number): Buffer | undefined {
    return this.#keys.get(term);
  }

  has(term: number): boolean {
    return this.#keys.has(term);
  }

  /** The newest term, 0 when empty. */
  get activeTerm(): number {
    return this.#active;
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Overwrites every key with zeros and empties the ring. */
  zero(): void {
    for (const key of this.#keys.values()) key.fill(0);
    this.#keys.clear();
    this.#active = 0;
  }
}
