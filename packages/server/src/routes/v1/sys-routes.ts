import {
  type CustosNode,
  DEFAULT_KEY_REFRESH_INTERVAL_MS,
  MAX_TASK_TTL_MS,
  NotFoundError,
  ValidationError,
} from '@custos/core';
import type { FastifyInstance } from 'fastify';
import type { DiskGuard } from '../../disk-guard.js';
import { HEALTH_PROBLEMS, type NodeHealth, sealedProblems } from '../../node-health.js';

// Unseal and init accept secret material from anonymous callers, so they are
// rate limited like the auth routes: a share cannot be guessed, but a flood
// of wrong shares could keep resetting an operator's unseal progress.
const anonymousLimit = { max: 30, timeWindow: '1 minute' };

const healthSchema = {
  type: 'object',
  properties: {
    initialized: { type: 'boolean' },
    sealed: { type: 'boolean' },
    degraded: { type: 'boolean' },
    problems: { type: 'array', items: { type: 'string', enum: HEALTH_PROBLEMS } },
    version: { type: 'string' },
  },
} as const;

const diskSchema = {
  type: 'object',
  properties: {
    checked_at: { type: 'string' },
    free_bytes: { type: 'integer' },
    total_bytes: { type: 'integer' },
    free_percent: { type: 'number' },
    audit_growth_bytes_per_min: { type: 'integer' },
    minutes_to_full: { type: 'integer' },
    low: { type: 'boolean' },
    action: { type: 'string', enum: ['warn', 'rotate-and-warn', 'archive-and-warn'] },
  },
} as const;

const sealStatusSchema = {
  type: 'object',
  properties: {
    initialized: { type: 'boolean' },
    sealed: { type: 'boolean' },
    type: { type: ['string', 'null'] },
    threshold: { type: 'integer' },
    shares: { type: 'integer' },
    progress: { type: 'integer' },
    term: { type: 'integer' },
    // Wrapped seals: the wrapper type (pkcs11, …). The seal key's labels are
    // not in this public answer: they are shown to operators by rotate-seal.
    wrapper: { type: 'string' },
    // Why a node stays sealed although its seal opened: a stable code
    // (CUSTOS_ERR_AUDIT_INTEGRITY), never the detail, since this is public.
    reason: { type: 'string' },
  },
} as const;

/** `/v1/sys/*`: health, seal lifecycle, keyring rotation. */
export async function sysRoutes(
  app: FastifyInstance,
  { node, health, diskGuard }: { node: CustosNode; health: NodeHealth; diskGuard?: DiskGuard },
): Promise<void> {
  app.get('/sys/health', {
    // Probed every few seconds by load balancers; it reveals seal state and
    // fixed problem words (NodeHealth), never a path, a message or a count.
    // It writes nothing (reads the seal configuration only), so it answers on a full disk.
    config: { access: { kind: 'public' }, whileSealed: true, unaudited: true },
    schema: {
      tags: ['sys'],
      summary:
        'Health: 200 serving, 503 sealed or refusing requests (audit_unavailable), 501 not initialised; `degraded` with `problems` when something needs an operator (audit_integrity: sealed because the audit chain failed its check)',
      response: {
        '2xx': healthSchema,
        '5xx': healthSchema,
      },
    },
    handler: async (_request, reply) => {
      const status = await node.status();
      // Sealed, only a node that stays sealed for a reason of its own has a
      // problem (its word only; the detail is in the server log).
      const problems = !status.initialized ? [] : status.sealed ? sealedProblems(status) : health.problems();
      // 503 whenever this node would refuse the request a load balancer sends
      // it; a log that cannot be written leaves it serving (200, degraded).
      const code = !status.initialized ? 501 : status.sealed || problems.includes('audit_unavailable') ? 503 : 200;
      return reply.code(code).send({
        initialized: status.initialized,
        sealed: status.sealed,
        degraded: problems.length > 0,
        problems,
        version: node.version,
      });
    },
  });

  app.get('/sys/disk', {
    // The disk guard's figures. Not on the public health route: free space,
    // size and growth rate tell an outsider how busy the node is and when it
    // will start refusing requests, so they are for operators (`read` on
    // `sys/disk`); health says only `disk_low`. Counts only, never a path.
    config: { access: { kind: 'policy', action: 'read', resource: () => 'sys/disk', operatorOnly: true } },
    schema: {
      tags: ['sys'],
      summary:
        'Free space where the audit trail grows and its growth rate (audit.disk_guard); 404 CUSTOS_ERR_NOT_FOUND when the guard is not configured',
      response: { 200: diskSchema },
    },
    handler: async () => {
      if (!diskGuard) throw new NotFoundError('The disk guard is not configured (audit.disk_guard).');
      const r = diskGuard.reading ?? (await diskGuard.check());
      return {
        checked_at: r.checkedAt,
        free_bytes: r.freeBytes,
        total_bytes: r.totalBytes,
        free_percent: r.freePercent,
        low: r.low,
        action: diskGuard.action,
        ...(r.auditGrowthBytesPerMin !== undefined ? { audit_growth_bytes_per_min: r.auditGrowthBytesPerMin } : {}),
        ...(r.minutesToFull !== undefined ? { minutes_to_full: r.minutesToFull } : {}),
      };
    },
  });

  app.get('/sys/seal-status', {
    config: { access: { kind: 'public' }, whileSealed: true, unaudited: true },
    schema: { tags: ['sys'], summary: 'Seal status and unseal progress', response: { 200: sealStatusSchema } },
    handler: async () => node.status(),
  });

  app.post<{ Body: { shares?: number; threshold?: number } }>('/sys/init', {
    // Public because nothing exists yet to authenticate with (as in Vault):
    // whoever initialises first holds the shares and the root token, so a
    // Shamir node must be initialised by its operators before it is exposed.
    // Once initialised, by any node, it is refused (ALREADY_INITIALIZED).
    config: { access: { kind: 'public' }, whileSealed: true, rateLimit: anonymousLimit },
    schema: {
      tags: ['sys'],
      summary: 'Initialise: returns the unseal key shares and the root token, once',
      body: {
        type: 'object',
        properties: {
          shares: { type: 'integer', minimum: 1, maximum: 255 },
          threshold: { type: 'integer', minimum: 1, maximum: 255 },
        },
        additionalProperties: false,
      },
    },
    handler: async (request) => node.initialize(request.body ?? {}),
  });

  app.post<{ Body: { key?: string; reset?: boolean } }>('/sys/unseal', {
    // Public, as it must be to unseal, so it may only ever move a sealed node
    // towards unsealed: a share is counted (or ignored once unsealed), a reset
    // forgets the shares so far and is refused on an unsealed node. Sealing
    // is `sys/seal`, an operator's action; nothing here reaches it.
    config: { access: { kind: 'public' }, whileSealed: true, rateLimit: anonymousLimit },
    schema: {
      tags: ['sys'],
      summary: 'Submit one unseal key share, or reset unseal progress (only while sealed)',
      body: {
        type: 'object',
        properties: { key: { type: 'string', maxLength: 1024 }, reset: { type: 'boolean' } },
        additionalProperties: false,
      },
      response: { 200: sealStatusSchema },
    },
    handler: async (request) => {
      const { key, reset } = request.body ?? {};
      if (reset && key !== undefined) throw new ValidationError('Send a key share or reset, not both.');
      if (reset) return node.resetUnseal();
      return node.submitUnsealShare(key ?? '');
    },
  });

  app.post('/sys/seal', {
    config: { access: { kind: 'policy', action: 'admin', resource: () => 'sys/seal', operatorOnly: true } },
    schema: { tags: ['sys'], summary: 'Seal: drop every key from memory' },
    handler: async (_request, reply) => {
      // The request event was recorded before this runs (audit plugin); once
      // sealed there is no audit key, so the response event cannot follow.
      await node.seal();
      return reply.code(204).send();
    },
  });

  app.post<{ Body: { key: string; create_key?: boolean } }>('/sys/seal/rotate', {
    // rotate-seal: an operator's action like sys/seal (root or an operator
    // with admin on sys/seal). It can only ADD a wrapping of the root key
    // under another key of the configured root of trust; where that root of
    // trust is comes from the server config, never from the request, which
    // names a key only:
    // - pkcs11: a key label on the configured token (library, token and PIN
    //   from the config);
    // - azurekeyvault: a key name in the configured vault (the name cannot
    //   spell a URL);
    // - awskms: a key id, alias name, or an ARN — and KMS accepts another
    //   account's ARN, so the seals package refuses any key (checked on the
    //   ARN and again with DescribeKey) outside the current key's partition,
    //   account and region (aws-kms-rotate-target.ts).
    // The new wrapping is verified before it is relied on.
    config: { access: { kind: 'policy', action: 'admin', resource: () => 'sys/seal', operatorOnly: true } },
    schema: {
      tags: ['sys'],
      summary: 'Re-wrap the root key under another key of the seal (rotate-seal), without downtime',
      body: {
        type: 'object',
        required: ['key'],
        properties: {
          key: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\x20-\\x7e]+$' },
          create_key: { type: 'boolean' },
        },
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          properties: {
            generation: { type: 'integer' },
            seal_key: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
      },
    },
    handler: async (request) => {
      const { generation, sealKey } = await node.rotateSeal({
        key: request.body.key,
        createKey: request.body.create_key ?? false,
      });
      return { generation, seal_key: sealKey };
    },
  });

  app.post('/sys/rotate', {
    config: { access: { kind: 'policy', action: 'admin', resource: () => 'sys/keyring', operatorOnly: true } },
    schema: { tags: ['sys'], summary: 'Add a new keyring term; new writes use it, old data stays readable' },
    handler: async () => node.rotateKeyring(),
  });
}

/** `POST /v1/sys/task-keys/rotate`: a new task-token signing key; old keys stay in the JWKS while their tokens can live. */
export async function taskKeyRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.post('/sys/task-keys/rotate', {
    config: { access: { kind: 'policy', action: 'admin', resource: () => 'sys/task-keys', operatorOnly: true } },
    schema: { tags: ['sys'], summary: 'Rotate the task-token signing key' },
    handler: async () => {
      // A token signed by the old key lives at most MAX_TASK_TTL_MS; other
      // nodes may sign with the old key until they next re-read the key set.
      const kid = await node.services().taskKeys.rotate({
        retireAfterMs: MAX_TASK_TTL_MS + DEFAULT_KEY_REFRESH_INTERVAL_MS,
      });
      return { kid };
    },
  });
}
