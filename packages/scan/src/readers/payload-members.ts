/**
 * Archive members that hold tensor payloads by the format's own layout, not
 * by guess: PyTorch's zip format keeps each storage at `<name>/data/<key>`
 * (the pickle refers to it by key). They are skipped without being read.
 */
export function isPayloadMember(name: string): boolean {
  return /(^|\/)data\/\d+$/.test(name);
}
