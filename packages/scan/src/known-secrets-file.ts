/**
 * `--secrets-file` means the same for `custos scan` as for `custos redact`:
 * one parser, in `@custos/redact` (JSON `{name: value}` / `[{name, value}]`,
 * or dotenv-style `NAME=value` lines, each line also registered whole).
 */
export { parseSecretsFile as parseKnownSecrets } from '@custos/redact';
