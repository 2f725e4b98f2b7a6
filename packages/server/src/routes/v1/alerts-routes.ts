import {
  ALERT_PAGE_MAX,
  type CustosNode,
  FINDING_SEVERITIES,
  type FindingSeverity,
  type FindingState,
  parseDuration,
  REPLAY_LIST_MAX,
  ruleActions,
  ValidationError,
} from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** `sys/alerts/<id>`: the policy resource of one finding. */
const alertResource = (request: FastifyRequest) =>
  `sys/alerts/${(request as FastifyRequest<{ Params: { id: string } }>).params.id}`;

const idParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^al_[0-9a-f]{24}_[a-z0-9-]{1,64}$' } },
  required: ['id'],
} as const;

interface ReplayBody {
  since: string;
  until?: string;
  rules?: string[];
  limit?: number;
  warm_events?: number;
  time_budget?: string;
}

const replayBodySchema = {
  type: 'object',
  properties: {
    since: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      description: 'A duration back from now (`7d`) or an ISO-8601 time',
    },
    until: { type: 'string', minLength: 1, maxLength: 64, description: 'The same forms; default now' },
    rules: {
      type: 'array',
      items: { type: 'string', pattern: '^[a-z0-9-]{1,64}$' },
      minItems: 1,
      maxItems: 32,
      uniqueItems: true,
    },
    limit: { type: 'integer', minimum: 0, maximum: REPLAY_LIST_MAX },
    warm_events: { type: 'integer', minimum: 0, maximum: 1_000_000 },
    time_budget: { type: 'string', minLength: 1, maxLength: 16, description: 'Wall-clock time, e.g. `2m`' },
  },
  required: ['since'],
  additionalProperties: false,
} as const;

/** `2m`: a duration, clear error otherwise (the replayer checks it against the node's limit). */
function replayBudget(text: string): number {
  try {
    return parseDuration(text, 24 * 3_600_000);
  } catch {
    throw new ValidationError('time_budget is a duration such as "2m".');
  }
}

/**
 * `/v1/alerts`: the anomaly engine's findings. Operator tokens only, under
 * Cedar like every other `sys/` resource: findings name identities, tasks
 * and the secret paths they touched, so an agent (a task) may never list
 * them — not even its own, which would tell a compromised agent which of its
 * moves were noticed. Acknowledging needs `admin` on the finding: reading
 * alerts (an on-call dashboard) does not let one silence them.
 */
export async function alertRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.get<{
    Querystring: { state?: FindingState; rule?: string; severity?: FindingSeverity; cursor?: string; limit?: string };
  }>('/alerts', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/alerts/', operatorOnly: true } },
    schema: {
      tags: ['alerts'],
      summary: 'Findings of the anomaly engine, newest first, paged and filtered',
      querystring: {
        type: 'object',
        properties: {
          state: { type: 'string', enum: ['open', 'acked'] },
          rule: { type: 'string', pattern: '^[a-z0-9-]{1,64}$' },
          severity: { type: 'string', enum: [...FINDING_SEVERITIES] },
          cursor: { type: 'string', pattern: '^al_[0-9a-f]{24}_[a-z0-9-]{1,64}$' },
          limit: { type: 'string', pattern: `^[1-9][0-9]{0,2}$` },
        },
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const { state, rule, severity, cursor, limit } = request.query;
      // A limit over the cap is refused (CUSTOS_ERR_VALIDATION), never silently served in full.
      return node.services().alerts.list({
        ...(state ? { state } : {}),
        ...(rule ? { rule } : {}),
        ...(severity ? { severity } : {}),
        ...(cursor ? { cursor } : {}),
        limit: limit ? Number(limit) : Math.min(50, ALERT_PAGE_MAX),
      });
    },
  });

  app.get('/alerts/rules', {
    // Operators only: the thresholds are what an agent would need to stay just below them.
    config: { access: { kind: 'policy', action: 'read', resource: () => 'sys/alerts/rules', operatorOnly: true } },
    schema: {
      tags: ['alerts'],
      summary:
        "Each rule, its configuration, its quarantine actions and this node's counts since unseal (events, findings, errors)",
    },
    handler: async () => {
      const { anomaly: engine, anomalyActions } = node.services();
      if (!engine) return { enabled: false, rules: [] };
      const stats = engine.stats();
      return {
        enabled: true,
        ...stats,
        // What each rule does on its own when it fires (none, or its quarantine actions), and from which severity.
        rules: stats.rules.map((r) => ({ ...r, actions: ruleActions(anomalyActions, r.rule) })),
        action_min_severity: anomalyActions?.minSeverity ?? 'low',
      };
    },
  });

  app.post<{ Body: ReplayBody }>('/alerts/replay', {
    // Operators with `admin` on sys/alerts/replay: a replay holds the node's
    // one replay slot and its CPU for up to the time budget, and shows every
    // finding (with explanations) the rules would have raised — more than
    // reading alerts should grant. A task is refused whatever its policies say.
    config: { access: { kind: 'policy', action: 'admin', resource: () => 'sys/alerts/replay', operatorOnly: true } },
    schema: {
      tags: ['alerts'],
      summary: 'Run the rules over stored audit history and report what they would have raised, without acting',
      description:
        "Fresh instances of the node's rules (its effective configuration) learn from the `warm_events` records " +
        'before `since`, then judge the records from `since` to `until`. Nothing is stored, announced or acted ' +
        'on. One replay at a time per node (`CUSTOS_ERR_REPLAY_BUSY`); the range, the records and the time are ' +
        'bounded, and a replay a bound stopped says so (`complete: false`, `stopped`).',
      body: replayBodySchema,
    },
    handler: async (request) => {
      const b = request.body;
      return node.services().alertReplay.replay({
        since: b.since,
        ...(b.until ? { until: b.until } : {}),
        ...(b.rules ? { rules: b.rules } : {}),
        ...(b.limit !== undefined ? { limit: b.limit } : {}),
        ...(b.warm_events !== undefined ? { warmEvents: b.warm_events } : {}),
        ...(b.time_budget ? { timeBudgetMs: replayBudget(b.time_budget) } : {}),
      });
    },
  });

  app.get<{ Params: { id: string } }>('/alerts/:id', {
    config: { access: { kind: 'policy', action: 'read', resource: alertResource, operatorOnly: true } },
    schema: {
      tags: ['alerts'],
      summary: 'One finding: subject, evidence (audit seqs and hashes), explanation',
      params: idParams,
    },
    handler: async (request) => node.services().alerts.get(request.params.id),
  });

  app.post<{ Params: { id: string } }>('/alerts/:id/ack', {
    config: { access: { kind: 'policy', action: 'admin', resource: alertResource, operatorOnly: true } },
    schema: { tags: ['alerts'], summary: 'Acknowledge a finding (the first acknowledgement stands)', params: idParams },
    handler: async (request) => {
      const principal = request.auth;
      // operatorOnly: the caller is an operator token; its accessor, not its cosmetic display name, is recorded.
      const by = principal?.kind === 'operator' ? principal.token.accessor : 'unknown';
      return node.services().alerts.ack(request.params.id, by, new Date());
    },
  });
}
