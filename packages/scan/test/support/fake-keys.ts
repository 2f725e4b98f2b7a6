import { randomInt } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function randomChars(n: number, alphabet = ALNUM): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

/** Fake keys built at run time in the shapes the redaction detectors know. */
export const fakeOpenAiKey = (): string => `sk-proj-${randomChars(48)}`;
export const fakeHfToken = (): string => `hf_${randomChars(34, LETTERS)}`;
export const fakeAwsKeyId = (): string => `AKIA${randomChars(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`;
