import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  type AuditRecord,
  auditArchiveFileName,
  type CustosNode,
  exportAuditSince,
  formatAuditCheckpointLine,
  formatAuditRecordLine,
  NotFoundError,
  parseAuditArchiveTime,
  searchAudit,
  tailAudit,
  ValidationError,
} from '@custos/core';
import type { FastifyInstance } from 'fastify';
import { type AuditSearchQuerystring, auditSearchQuerySchema, parseAuditSearchQuery } from './audit-search-query.js';

const readAudit = { kind: 'policy', action: 'read', resource: () => 'sys/audit' } as const;
const recordView = (r: AuditRecord) => ({ ...r, event: JSON.parse(r.event) as unknown });

/** `/v1/audit/*`: HMAC of a known value, verification, tail and export. */
export async function auditRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.post<{ Body: { input: string } }>('/audit/hash', {
    config: { access: readAudit },
    schema: {
      tags: ['audit'],
      summary: 'HMAC-SHA256 of a value with the audit key, to find it in audit events',
      body: {
        type: 'object',
        properties: { input: { type: 'string', minLength: 1, maxLength: 65_536 } },
        required: ['input'],
        additionalProperties: false,
      },
    },
    handler: async (request) => ({ hash: node.services().auditHmac(request.body.input) }),
  });

  app.get('/audit/verify', {
    config: { access: readAudit },
    schema: { tags: ['audit'], summary: 'Verify the hash chain and signed checkpoints' },
    handler: async () => node.services().verifyAudit(),
  });

  app.get<{ Querystring: { n?: string } }>('/audit/tail', {
    config: { access: readAudit },
    schema: {
      tags: ['audit'],
      summary: 'The last n events',
      querystring: {
        type: 'object',
        properties: { n: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' } },
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const records: unknown[] = [];
      for await (const r of tailAudit(node.services().storage.audit, Number(request.query.n ?? 20)))
        records.push(recordView(r));
      return { records };
    },
  });

  app.get<{ Querystring: AuditSearchQuerystring }>('/audit/search', {
    // The same permission as tail and export: a search shows no more than they do.
    config: { access: readAudit },
    schema: {
      tags: ['audit'],
      summary: 'Search the online trail, newest first, by identity, task, path, action, decision and time',
      querystring: auditSearchQuerySchema,
    },
    handler: async (request) => {
      const { filter, limit, beforeSeq } = parseAuditSearchQuery(request.query);
      // The scan per call is bounded (AUDIT_SEARCH_MAX_SCAN seqs): `complete: false` and
      // `next_before_seq` tell the client where to continue, so one request never reads the whole trail.
      const result = await searchAudit(node.services().storage.audit, filter, {
        limit,
        ...(beforeSeq === undefined ? {} : { beforeSeq }),
      });
      return {
        records: result.records.map(({ record, event }) => ({ ...record, event })),
        ...(result.nextBeforeSeq === undefined ? {} : { next_before_seq: result.nextBeforeSeq }),
        scanned_through_seq: result.scannedThroughSeq,
        complete: result.complete,
      };
    },
  });

  app.get<{ Querystring: { since?: string } }>('/audit/export', {
    config: { access: readAudit },
    schema: {
      tags: ['audit'],
      summary: 'Records since a time, and every checkpoint, as JSON lines (verifiable offline)',
      querystring: {
        type: 'object',
        properties: { since: { type: 'string', maxLength: 64 } },
        additionalProperties: false,
      },
    },
    handler: async (request, reply) => {
      const since = request.query.since ?? '1970-01-01T00:00:00.000Z';
      if (Number.isNaN(Date.parse(since))) throw new ValidationError('since must be an ISO-8601 time.');
      const store = node.services().storage.audit;
      async function* lines() {
        for await (const r of exportAuditSince(store, since)) yield `${formatAuditRecordLine(r)}\n`;
        for (const c of await store.checkpoints()) yield `${formatAuditCheckpointLine(c)}\n`;
      }
      return reply.type('application/x-ndjson').send(Readable.from(lines()));
    },
  });

  // Archival (docs/audit.md, "Archival"). Operator tokens only, `sys`
  // permissions: it deletes records from the database (after archiving
  // them). The archive is written into the server's configured directory
  // under a name fixed by its number: nothing in the request names a path.
  app.post<{ Body: { before: string } }>('/audit/archive', {
    config: { access: { kind: 'policy', action: 'admin', resource: () => 'sys/audit/archive', operatorOnly: true } },
    schema: {
      tags: ['audit'],
      summary: 'Archive the records sealed before a time, then remove them from the database',
      body: {
        type: 'object',
        properties: { before: { type: 'string', minLength: 1, maxLength: 64 } },
        required: ['before'],
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      // Archival deletes: only a time that says exactly what it means is taken (see parseAuditArchiveTime).
      const before = parseAuditArchiveTime(request.body.before);
      if (!before)
        throw new ValidationError(
          'before must be a date (2030-01-01) or a date-time with its zone (2030-01-01T00:00:00Z).',
        );
      const run = await node.services().archiveAudit(before);
      const m = run.written?.manifest;
      return {
        archived: m
          ? {
              archive: m.archive,
              file: run.written!.file,
              first_seq: m.firstSeq,
              last_seq: m.lastSeq,
              records: m.records,
              bytes: run.written!.bytes,
            }
          : null,
        deleted: run.deleted,
        // Rotated audit files removed because the archives hold all their records (a count, never a name).
        ...(run.filesRemoved ? { files_removed: run.filesRemoved } : {}),
        ...(run.resumed ? { resumed: run.resumed } : {}),
        // Another node of the cluster holds the archival lease: nothing was done here.
        ...(run.busy ? { busy: true } : {}),
      };
    },
  });

  app.get<{ Params: { archive: string } }>('/audit/archive/:archive', {
    config: { access: { kind: 'policy', action: 'read', resource: () => 'sys/audit/archive', operatorOnly: true } },
    schema: {
      tags: ['audit'],
      summary: 'Download an archive by its number (gzip of JSON lines, verifiable offline)',
      // A number only: the file name is derived from it, so no path can be smuggled in.
      params: {
        type: 'object',
        properties: { archive: { type: 'string', pattern: '^[1-9][0-9]{0,8}$' } },
        required: ['archive'],
      },
    },
    handler: async (request, reply) => {
      const archiveDir = node.services().auditArchiveDir;
      if (!archiveDir) throw new NotFoundError('audit archival is not configured.');
      const path = join(archiveDir, auditArchiveFileName(Number(request.params.archive)));
      const found = await stat(path).catch(() => undefined);
      if (!found?.isFile()) throw new NotFoundError('no such archive.');
      return reply.type('application/gzip').send(createReadStream(path));
    },
  });

  app.get('/audit/public-keys', {
    // Public keys are public: anyone holding an export may verify it.
    config: { access: { kind: 'public' } },
    schema: { tags: ['audit'], summary: 'Checkpoint verification keys (PEM) by key id' },
    handler: async () => ({
      keys: [...node.services().auditPublicKeys].map(([keyId, key]) => ({
        key_id: keyId,
        public_key_pem: key.export({ format: 'pem', type: 'spki' }).toString(),
      })),
    }),
  });
}
