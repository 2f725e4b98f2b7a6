import { UpstreamInjectError, UpstreamSecretUnavailableError } from './upstream-errors.js';
import type { InjectRule } from './upstream-types.js';

/** The placeholder the secret's value replaces. */
export const VALUE_PLACEHOLDER = '{{value}}';
export const MAX_INJECT_RULES = 8;
const MAX_TEMPLATE_LENGTH = 1024;
/** RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const QUERY_NAME = /^[A-Za-z0-9._~-]{1,128}$/;
/** Header value characters Node sends (visible ASCII, space, tab, obs-text). */
const HEADER_VALUE = /^[\t\u0020-\u007e\u0080-\u00ff]*$/;

/**
 * Headers an inject rule may never set. Hop-by-hop headers describe one
 * connection, not the request (RFC 9110 §7.6.1): one set by custos would be
 * consumed or reinterpreted by an intermediary, and `Transfer-Encoding` or
 * `Content-Length` could desynchronise the request framing (smuggling).
 * `Host` decides where the request goes: the base URL alone decides that.
 */
const FORBIDDEN_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
]);

/**
 * Parses `header:NAME=TEMPLATE` or `query:NAME=TEMPLATE`. The template holds
 * `{{value}}` exactly once (twice would send the credential twice, none would
 * make the rule pointless); no CR, LF or other control character anywhere,
 * which would let a template split a header into two.
 */
export function parseInjectRule(text: string): InjectRule {
  if (typeof text !== 'string' || /[\u0000-\u0008\u000a-\u001f\u007f]/.test(text)) {
    throw new UpstreamInjectError('An inject rule has no control characters (CR, LF, NUL…).');
  }
  const m = /^(header|query):([^=]+)=(.*)$/s.exec(text);
  if (!m) throw new UpstreamInjectError('An inject rule is header:NAME=TEMPLATE or query:NAME=TEMPLATE.');
  const target = m[1] as 'header' | 'query';
  const rawName = m[2] as string;
  const template = m[3] as string;
  if (template.length > MAX_TEMPLATE_LENGTH) throw new UpstreamInjectError('The template is at most 1024 characters.');
  if (template.split(VALUE_PLACEHOLDER).length !== 2) {
    throw new UpstreamInjectError('The template holds {{value}} exactly once.');
  }
  if (target === 'header') {
    if (!HEADER_NAME.test(rawName)) throw new UpstreamInjectError('The header name is not a valid HTTP token.');
    const name = rawName.toLowerCase();
    if (FORBIDDEN_HEADERS.has(name)) {
      throw new UpstreamInjectError(
        `The header ${name} is hop-by-hop or decides the destination: it cannot be injected.`,
      );
    }
    if (!HEADER_VALUE.test(template))
      throw new UpstreamInjectError('The template has characters a header cannot carry.');
    return { target, name, template };
  }
  if (!QUERY_NAME.test(rawName))
    throw new UpstreamInjectError('A query parameter name is 1–128 of A-Z a-z 0-9 . _ ~ -.');
  return { target, name: rawName, template };
}

/** Parses every rule; at least one, at most {@link MAX_INJECT_RULES}, no two on the same header or parameter. */
export function parseInjectRules(texts: readonly string[]): InjectRule[] {
  if (!Array.isArray(texts) || texts.length === 0 || texts.length > MAX_INJECT_RULES) {
    throw new UpstreamInjectError(`An upstream has 1–${MAX_INJECT_RULES} inject rules.`);
  }
  const rules = texts.map(parseInjectRule);
  const seen = new Set(rules.map((r) => `${r.target}:${r.name}`));
  if (seen.size !== rules.length) throw new UpstreamInjectError('Two inject rules set the same header or parameter.');
  return rules;
}

/** The rule as written (`header:authorization=Bearer {{value}}`). */
export function formatInjectRule(rule: InjectRule): string {
  return `${rule.target}:${rule.name}=${rule.template}`;
}

/**
 * The template with the value in place. The caller has checked the value
 * (no control characters); a header value is checked again here against
 * what Node would refuse, so a value never half-sends a request.
 */
export function renderInject(rule: InjectRule, value: string): string {
  const rendered = rule.template.replace(VALUE_PLACEHOLDER, () => value);
  if (rule.target === 'header' && !HEADER_VALUE.test(rendered)) {
    throw new UpstreamSecretUnavailableError('The value has characters a header cannot carry.');
  }
  return rendered;
}
