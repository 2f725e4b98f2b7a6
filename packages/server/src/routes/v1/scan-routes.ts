import { createHmac, randomBytes } from 'node:crypto';
import { type CustosNode, isCustosError, validateSecretPath } from '@custos/core';
import type { FastifyInstance } from 'fastify';
import { recordPathReads, recordPathReports } from '../../plugins/audit-plugin.js';

/** Fingerprinted values shorter than this are left out: they would match ordinary words. */
const MIN_LENGTH = 8;
const MAX_SECRETS = 10_000;
/** Matches one report may carry: a scan that finds more reports them in several requests. */
const MAX_REPORTED = 100;
/**
 * Reports per source address and minute. Generous — `custos redact` reports
 * each stored secret as it sees it, a large scan in batches of 100 — but a
 * bound on how many audit events one caller can make custos write.
 */
const REPORT_LIMIT = { max: 600, timeWindow: '1 minute' };

/**
 * `POST /v1/scan/fingerprints`: for `custos scan --against-vault`, the keyed
 * hashes of every secret field the caller may `read`, so a scanner can find
 * stored secrets in artifacts without downloading them.
 *
 * The HMAC key is fresh for each request and returned with the hashes: it
 * stops hashes from one answer being correlated with another (or with the
 * audit log's HMACs), but whoever holds an answer can test guesses against
 * it. That is why only values the caller may read anyway are included — a
 * caller learns nothing it could not `GET` — and short values are left out.
 */
export async function scanRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.post('/scan/fingerprints', {
    // Per-secret authorisation happens below: each path is included only if
    // the caller's policy (and, for a task, scope) allows `read` on it.
    config: { access: { kind: 'self' } },
    schema: { tags: ['secrets'], summary: 'Keyed hashes of the secret values the caller may read (for scanners)' },
    handler: async (request) => {
      const services = node.services();
      const principal = request.auth!;
      const key = randomBytes(32);
      const fingerprints: Array<{ path: string; field: string; version: number; hmac: string }> = [];
      const now = new Date();
      const included: string[] = [];
      for (const path of await services.secrets.paths(MAX_SECRETS)) {
        if (!services.authorize(principal, 'read', path, { sourceIp: request.ip, now }).allowed) continue;
        let secret: Awaited<ReturnType<typeof services.secrets.get>>;
        try {
          secret = await services.secrets.get(path);
        } catch (error) {
          // Deleted or destroyed current versions have nothing to match.
          if (isCustosError(error) && error.status < 500) continue;
          throw error;
        }
        let fingerprinted = false;
        for (const [field, value] of Object.entries(secret.data)) {
          if (value.length < MIN_LENGTH) continue;
          const hmac = createHmac('sha256', key).update(value, 'utf8').digest('hex');
          fingerprints.push({ path, field, version: secret.metadata.version, hmac });
          fingerprinted = true;
        }
        if (fingerprinted) included.push(path);
      }
      // A hash of a value is a way to test guesses of it: each secret it
      // covers is audited as a read of that path, before the answer leaves.
      await recordPathReads(node, request, included);
      return { algorithm: 'hmac-sha256', key: key.toString('base64url'), min_length: MIN_LENGTH, fingerprints };
    },
  });

  app.post<{ Body: { source: 'scan' | 'redact'; matches: { path: string; field?: string; version?: number }[] } }>(
    '/scan/matches',
    {
      // Per-path authorisation below: only paths the caller may `read` are recorded.
      config: { access: { kind: 'self' }, rateLimit: REPORT_LIMIT },
      schema: {
        tags: ['secrets'],
        summary: 'Report stored secrets found (by fingerprint) in scanned files or redacted output',
        body: {
          type: 'object',
          properties: {
            source: { type: 'string', enum: ['scan', 'redact'] },
            matches: {
              type: 'array',
              maxItems: MAX_REPORTED,
              items: {
                type: 'object',
                properties: {
                  path: { type: 'string', minLength: 1, maxLength: 512 },
                  field: { type: 'string', maxLength: 256 },
                  version: { type: 'integer', minimum: 0 },
                },
                required: ['path'],
                additionalProperties: false,
              },
            },
          },
          required: ['source', 'matches'],
          additionalProperties: false,
        },
      },
      /**
       * Each reported path the caller may `read` is recorded as one audit
       * event (`phase: path_report`); the anomaly rules judge them — a
       * honeytoken's path among them is the `honeytoken` rule's finding. The
       * answer is 204 whatever was reported: honeytoken or not, existing or
       * not, readable or not. The client cannot tell honeytokens apart (they
       * are in its fingerprint list like any secret it may read), so it
       * reports every match, and the route must not tell it either — else
       * it would be an oracle for "is this a decoy". A path the caller may
       * not read cannot have come from its fingerprint list and is dropped
       * unrecorded (the request itself is audited, like every request).
       * Floods cost one audit event per path: at most 100 a request and
       * REPORT_LIMIT requests a minute per source address; findings are
       * bounded by the rule's cooldown and the engine's budget.
       */
      handler: async (request, reply) => {
        const services = node.services();
        const principal = request.auth!;
        const now = new Date();
        const paths = new Set<string>();
        for (const match of request.body.matches) {
          let path: string;
          try {
            path = validateSecretPath(match.path);
          } catch {
            continue;
          }
          if (services.authorize(principal, 'read', path, { sourceIp: request.ip, now }).allowed) paths.add(path);
        }
        await recordPathReports(node, request, [...paths], request.body.source);
        return reply.code(204).send();
      },
    },
  );
}
