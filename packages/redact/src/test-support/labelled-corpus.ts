/**
 * The labelled corpus: per detector, positives (text + the secret it holds)
 * and hard negatives (text that looks like a credential and is not), plus
 * negatives every detector must leave alone. Generated at run time from a
 * fixed seed — never real credentials — so the figures are reproducible.
 */
import { B64, DIGITS, Fake, fakeCredential, HEX } from './fake-credentials.js';

export interface LabelledText {
  text: string;
  /** The secrets in `text`; empty for a negative. */
  secrets: string[];
}

const PROSE = [
  'The agent retried the request after the upstream returned 401.',
  'Here is the configuration I used while debugging the deployment:',
  'I will now explain why the call failed and what to change.',
  'Step 3: export the variable and run the job again.',
  'The logs below show the exact request that was sent.',
];

const hex = (f: Fake, n: number): string => f.chars(n, HEX);
const uuid = (f: Fake): string => `${hex(f, 8)}-${hex(f, 4)}-4${hex(f, 3)}-a${hex(f, 3)}-${hex(f, 12)}`;

/** Hard negatives per detector: near misses of its own format. */
export const hardNegatives: Record<string, (f: Fake) => string[]> = {
  'aws-access-key-id': (f) => [
    `aws_access_key_id = ${'AKIA'}IOSFODNN7${'EXAMPLE'}`,
    `AKIA${f.chars(15, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')} is too short`,
    `blob ${f.chars(20, B64)}AKIA${f.chars(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')}${f.chars(20, B64)}`,
  ],
  'aws-secret-access-key': (f) => [
    'aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}',
    `aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCY${'EXAMPLE'}KEY`,
    `commit ${hex(f, 40)}`,
  ],
  'github-token': (f) => [
    `ghp_${f.chars(36)} has a wrong checksum`,
    `ghp_${'x'.repeat(36)}`,
    'set GITHUB_TOKEN=ghp_yourtokenhere',
  ],
  'github-fine-grained-token': () => ['github_pat_<your-token>', 'the github_pat_ prefix marks fine-grained tokens'],
  'gitlab-token': () => [`glpat-${'x'.repeat(20)}`, 'PRIVATE-TOKEN: glpat-<your_access_token>'],
  'slack-token': () => ['xoxb-your-token-here', `xoxp-${'x'.repeat(40)}`],
  'slack-webhook': () => ['https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX'],
  'stripe-key': (f) => [`pk_live_${f.chars(24)} is publishable`, `sk_test_${'x'.repeat(24)}`, 'sk_live_...'],
  'custos-token': (f) => [
    `cus_${'x'.repeat(43)}`,
    `cus_${f.chars(20)} is too short`,
    'abacus_total and focus_group_results',
  ],
  'openai-key': (f) => [
    'risk-proj-management and desk-proj-planning',
    `sk-proj-${'x'.repeat(40)}`,
    `sk-${f.chars(10)} is too short`,
  ],
  'anthropic-key': () => [`sk-ant-api03-${'x'.repeat(90)}`, 'ANTHROPIC_API_KEY=sk-ant-...'],
  'google-api-key': (f) => [`AIza${'x'.repeat(35)}`, `AIzaSy${f.chars(10)} truncated`],
  'azure-storage-key': () => [`AccountKey=${'A'.repeat(86)}==`, 'AccountKey=<storage-account-key>;'],
  'azure-client-secret': (f) => [`abc1Q~${f.chars(10)} short`, 'the Q~ marker alone'],
  'huggingface-token': (f) => [
    'from huggingface_hub import hf_hub_download',
    `hf_${'x'.repeat(34)}`,
    'hf_transformers_model_configuration',
    // Right length and alphabet, but no random mix of cases: names, digests, numbers.
    `hf_${f.chars(34, 'abcdefghijklmnopqrstuvwxyz')}`,
    `checksum hf_${hex(f, 34)}`,
    `hf_${f.chars(34, DIGITS)}`,
    `api_org_${f.chars(34, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}`,
    "const api_org_controller = require('./controllers/api').organizations;",
    `old tokens look like api_org_${'X'.repeat(34)}`,
    // Not at a token boundary.
    `rhf_${f.chars(34)}`,
    `hf_${f.chars(35)}`,
    `xapi_org_${f.chars(34)}`,
  ],
  'npm-token': () => ['npm_config_registry=https://registry.npmjs.org/', 'npm_package_dependencies_typescript'],
  'pypi-token': (f) => ['pip install pypi-simple', `pypi-${f.chars(60)}`],
  'twilio-key': (f) => [`SKU${f.chars(12, DIGITS)}`, `SK${f.chars(32, 'ABCDEF0123456789')} upper-case is not a SID`],
  'sendgrid-key': () => [`SG.${'x'.repeat(22)}.${'x'.repeat(43)}`, 'SG.example'],
  jwt: (f) => [
    `${Buffer.from('{"foo":').toString('base64url')}.${Buffer.from('{"a":1}').toString('base64url')}.${f.chars(20)}`,
    'eyJ is how every JSON object starts in base64',
  ],
  'private-key': (f) => [
    `-----BEGIN PUBLIC KEY-----\n${Buffer.from(f.bytes(200)).toString('base64')}\n-----END PUBLIC KEY-----`,
    '-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----',
    `-----BEGIN CERTIFICATE-----\n${Buffer.from(f.bytes(200)).toString('base64')}\n-----END CERTIFICATE-----`,
  ],
  'database-connection-string': () => [
    'DATABASE_URL=postgres://user:password@localhost:5432/app',
    'postgres://app:${DB_PASSWORD}@db:5432/app',
    'mysql://localhost:3306/app',
    'I prefer postgres: it is reliable.',
  ],
  'authorization-header': () => [
    'Authorization: Bearer ${TOKEN}',
    'Authorization: Bearer <token>',
    'the authorization header is missing',
    'Authorization: Basic ****',
  ],
  'bearer-token': () => ['the bearer of bad news', 'token_type: Bearer', 'Bearer <paste-your-token-here>'],
  'secret-assignment': (f) => [
    `password_sha256=${hex(f, 64)}`,
    `token: ${uuid(f)}`,
    `secret = ${hex(f, 40)}`,
    'api_key = process.env.OPENAI_API_KEY',
    'password: ********',
    'token=12345678901234',
    'max_tokens=4096',
    'secret: true',
    'API_KEY=${API_KEY}',
    'password = <your-password>',
    'SECRET_KEY=CHANGE_ME_IN_PRODUCTION',
    'token = xxxxxxxxxxxxxxxx',
  ],
};

/** Negatives for every detector: things agents print that look random. */
export function generalNegatives(f: Fake): string[] {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, ...f.bytes(3000)]).toString('base64');
  return [
    `commit ${hex(f, 40)} (HEAD -> main)`,
    `request id ${uuid(f)}`,
    `sha256:${hex(f, 64)}  model.safetensors`,
    `<img src="data:image/png;base64,${png}">`,
    `integrity sha512-${Buffer.from(f.bytes(64)).toString('base64')}`,
    'Set OPENAI_API_KEY to <your-key> and AWS_SECRET_ACCESS_KEY to ${AWS_SECRET}.',
    `The tokenizer produced ${f.int(5000)} tokens; max_tokens was 4096.`,
    'Use a strong password and keep your secret keys in a vault.',
    `docker pull ghcr.io/acme/app@sha256:${hex(f, 64)}`,
  ];
}

export interface DetectorCorpus {
  positives: LabelledText[];
  negatives: LabelledText[];
}

/** The corpus for one detector, `n` positives each in a sentence of prose. */
export function corpusFor(id: string, seed = 42, n = 25): DetectorCorpus {
  const f = new Fake(seed);
  const gen = fakeCredential[id];
  const neg = hardNegatives[id];
  if (!gen || !neg) throw new Error(`no corpus for detector ${id}`);
  const positives: LabelledText[] = [];
  for (let i = 0; i < n; i++) {
    const [text, secret] = gen(f);
    positives.push({ text: `${f.pick(PROSE)}\n${text}\n${f.pick(PROSE)}`, secrets: [secret] });
  }
  return { positives, negatives: neg(f).map((text) => ({ text, secrets: [] })) };
}
