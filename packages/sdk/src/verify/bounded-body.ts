import { CustosProtocolError } from '../custos-errors.js';

/**
 * A response body as text, refusing more than `limit` bytes without reading
 * it all into memory: what custos serves to verifiers (its JWKS, a
 * resource's metadata) is small, and a larger answer is not custos's.
 */
export async function readBounded(response: Response, limit: number, what: string): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > limit) throw new CustosProtocolError(`${what} too large`);
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) throw new CustosProtocolError(`${what} too large`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
