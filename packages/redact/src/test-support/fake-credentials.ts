/**
 * Generators of fake credentials in the exact shape of real ones, for tests,
 * the labelled corpus and the benchmark. Values are built at run time from a
 * seeded PRNG so that nothing credential-shaped is committed to the
 * repository (and a pre-commit scan stays quiet).
 */
import { base62, crc32 } from '../detectors/detector-checks.js';

export const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const B64 = `${ALNUM}+/`;
export const B64URL = `${ALNUM}-_`;
export const HEX = '0123456789abcdef';
export const DIGITS = '0123456789';
export const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** mulberry32: small, fast, deterministic. Not for anything secret. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Fake {
  readonly rand: () => number;
  constructor(seed = 1) {
    this.rand = seededRandom(seed);
  }
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chars(n: number, alphabet = ALNUM): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** A word-ish password with symbols, as people and generators make them. */
  password(n = 16): string {
    return this.chars(n, `${ALNUM}!#%+-.@^_~`);
  }
}

const b64url = (s: string | Uint8Array): string => Buffer.from(s).toString('base64url');

/** One generator per builtin detector id: returns [text containing the secret, the secret]. */
export const fakeCredential: Record<string, (f: Fake) => [text: string, secret: string]> = {
  'aws-access-key-id': (f) => {
    const k = f.pick(['AKIA', 'ASIA']) + f.chars(16, BASE32);
    return [`export AWS_ACCESS_KEY_ID=${k}`, k];
  },
  'aws-secret-access-key': (f) => {
    const k = f.chars(40, B64);
    return [`aws_secret_access_key = ${k}`, k];
  },
  'github-token': (f) => {
    const body = f.chars(30);
    const t = `${f.pick(['ghp', 'gho', 'ghu', 'ghs', 'ghr'])}_${body}${base62(crc32(body), 6)}`;
    return [`git clone https://x-access-token:${t}@github.com/acme/repo.git`, t];
  },
  'github-fine-grained-token': (f) => {
    const t = `github_pat_${f.chars(22)}_${f.chars(59)}`;
    return [`GH_TOKEN=${t}`, t];
  },
  'gitlab-token': (f) => {
    const t = `glpat-${f.chars(20, `${ALNUM}_-`)}`;
    return [`PRIVATE-TOKEN: ${t}`, t];
  },
  'slack-token': (f) => {
    const t = `xoxb-${f.chars(11, DIGITS)}-${f.chars(12, DIGITS)}-${f.chars(24)}`;
    return [`SLACK_BOT_TOKEN="${t}"`, t];
  },
  'slack-webhook': (f) => {
    const s = `T${f.chars(8, UPPER)}/B${f.chars(10, UPPER)}/${f.chars(24)}`;
    return [`posting to https://hooks.slack.com/services/${s} now`, s];
  },
  'stripe-key': (f) => {
    const t = `${f.pick(['sk', 'rk'])}_${f.pick(['live', 'test'])}_${f.chars(f.pick([24, 99]))}`;
    return [`stripe.api_key = '${t}'`, t];
  },
  'custos-token': (f) => {
    const t = `${f.int(2) === 0 ? 'cus' : 'cbt'}_${f.chars(43, `${ALNUM}_-`)}`;
    return [`export CUSTOS_TOKEN=${t}`, t];
  },
  'openai-key': (f) => {
    const t =
      f.int(2) === 0
        ? `sk-proj-${f.chars(74, `${ALNUM}_-`)}T3BlbkFJ${f.chars(74, `${ALNUM}_-`)}`
        : `sk-${f.chars(20)}T3BlbkFJ${f.chars(20)}`;
    return [`client = OpenAI(api_key="${t}")`, t];
  },
  'anthropic-key': (f) => {
    const t = `sk-ant-api03-${f.chars(93, `${ALNUM}_-`)}AA`;
    return [`ANTHROPIC_API_KEY=${t}`, t];
  },
  'google-api-key': (f) => {
    const t = `AIza${f.chars(35, `${ALNUM}_-`)}`;
    return [`https://maps.googleapis.com/maps/api/geocode/json?key=${t}&address=x`, t];
  },
  'azure-storage-key': (f) => {
    const k = `${f.chars(86, B64)}==`;
    return [`DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=${k};EndpointSuffix=core.windows.net`, k];
  },
  'azure-client-secret': (f) => {
    const t = `${f.chars(3)}${f.chars(1, DIGITS)}Q~${f.chars(34, `${ALNUM}_~.-`)}`;
    return [`AZURE_CLIENT_SECRET=${t}`, t];
  },
  'huggingface-token': (f) => {
    // User tokens (base62 now, letters only before), and organisation API tokens.
    const t = f.pick([`hf_${f.chars(34)}`, `hf_${f.chars(34, LETTERS)}`, `api_org_${f.chars(34)}`]);
    return [
      f.pick([
        `huggingface-cli login --token ${t}`,
        `HF_TOKEN=${t} python train.py`,
        `load_dataset("acme/corpus", use_auth_token="${t}")`,
      ]),
      t,
    ];
  },
  'npm-token': (f) => {
    const t = `npm_${f.chars(36)}`;
    return [`//registry.npmjs.org/:_authToken=${t}`, t];
  },
  'pypi-token': (f) => {
    const t = `pypi-AgEIcHlwaS5vcmc${f.chars(120, `${ALNUM}_-`)}`;
    return [`password = ${t}`, t];
  },
  'twilio-key': (f) => {
    const t = `SK${f.chars(32, HEX)}`;
    return [`twilio api key ${t} created`, t];
  },
  'sendgrid-key': (f) => {
    const t = `SG.${f.chars(22, `${ALNUM}_-`)}.${f.chars(43, `${ALNUM}_-`)}`;
    return [`SENDGRID_API_KEY='${t}'`, t];
  },
  jwt: (f) => {
    const t = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(
      JSON.stringify({ sub: f.chars(8), iat: 1_700_000_000 + f.int(1e6) }),
    )}.${b64url(f.bytes(32))}`;
    return [`{"id_token":"${t}"}`, t];
  },
  'private-key': (f) => {
    const label = f.pick(['RSA PRIVATE KEY', 'PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'EC PRIVATE KEY']);
    const body = Buffer.from(f.bytes(400)).toString('base64');
    const lines = body.match(/.{1,64}/g)!.join('\n');
    const block = `-----BEGIN ${label}-----\n${lines}\n-----END ${label}-----`;
    if (f.int(2) === 0) return [`here is the key:\n${block}\n`, block];
    // A Google service-account file: the PEM sits in a JSON string with escaped newlines.
    const escaped = JSON.stringify(block).slice(1, -1);
    return [`{"type": "service_account", "private_key": "${escaped}", "client_email": "x"}`, escaped];
  },
  'database-connection-string': (f) => {
    const pw = f.password(16).replace(/[@/]/g, 'x');
    const scheme = f.pick(['postgres', 'postgresql', 'mysql', 'mongodb+srv', 'redis']);
    return [`DATABASE_URL=${scheme}://app:${pw}@db.internal:5432/app`, pw];
  },
  'authorization-header': (f) => {
    const bearer = f.int(2) === 0;
    const t = bearer ? f.chars(40, `${ALNUM}._-`) : Buffer.from(`admin:${f.password()}`).toString('base64');
    return [`curl -H "Authorization: ${bearer ? 'Bearer' : 'Basic'} ${t}" https://api`, t];
  },
  'bearer-token': (f) => {
    const t = f.chars(32, `${ALNUM}._-`);
    return [`the header was Bearer ${t} and it failed`, t];
  },
  'secret-assignment': (f) => {
    const t = f.password(20).replace(/[.@#%+~^]/g, 'q');
    const key = f.pick(['DB_PASSWORD', 'api_key', 'client_secret', 'SECRET_KEY', 'auth_token']);
    return [`${key}=${t}`, t];
  },
};
