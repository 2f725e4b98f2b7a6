import { CustosError } from '@custos/core';
import type { FastifyInstance } from 'fastify';

/**
 * Deepest nesting of arrays and objects accepted in a JSON body. custos's own
 * bodies nest a few levels (a JWKS key inside `jwks.keys`, four); 64 leaves
 * room for any client and is far below where nesting starts to cost.
 */
export const MAX_JSON_BODY_DEPTH = 64;

/**
 * True when `text` opens more than `max` arrays or objects at once, outside
 * strings. One pass, constant memory; it judges nothing else (the parser
 * refuses what is not JSON).
 */
export function jsonNestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * Replaces fastify's JSON body parser with the same parser behind a nesting
 * bound. Why: parsing is linear in the body size, but not with the same
 * constant — a 1 MiB body of nested brackets costs V8's JSON.parse about half
 * a second of blocked event loop, a flat one a few milliseconds, and the
 * public routes (logins, token exchange) parse bodies before any credential
 * is checked. The nesting is measured first, in one cheap pass, and a body
 * nested beyond {@link MAX_JSON_BODY_DEPTH} is refused with
 * CUSTOS_ERR_BAD_REQUEST before it is parsed. Deep values could also reach
 * recursive code later (`JSON.stringify` overflows its stack at ~10,000
 * levels): bounding them here closes that for every route at once.
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (jsonNestingExceeds(body as string, MAX_JSON_BODY_DEPTH)) {
      done(new CustosError('CUSTOS_ERR_BAD_REQUEST', `JSON nested more than ${MAX_JSON_BODY_DEPTH} levels`), undefined);
      return;
    }
    parse(request, body as string, done);
  });
}
