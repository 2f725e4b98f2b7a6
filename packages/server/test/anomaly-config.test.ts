import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAnomalyRules } from '@custos/core';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveAnomalyConfig } from '../src/anomaly-config-file.js';
import { resolveServerConfig } from '../src/server-config.js';
import { startServer } from '../src/start-server.js';

describe('the anomaly section of the server configuration file', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('reaches the rules of a running server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-anomaly-config-'));
    dirs.push(dir);
    writeFileSync(
      join(dir, 'custos.json'),
      JSON.stringify({
        anomaly: {
          warm_events: 500,
          rules: {
            'bootstrap-token-reuse': false,
            'denied-spike': { min_denied: 50, window: '2m', min_history: '1h' },
            'first-access': {
              warmup: '48h',
              upstreams: false,
              roles: { migrator: { disabled: true }, 'gpu-infer': { warmup: '2h' } },
            },
            'new-source-address': { ipv4_prefix: 16, ipv6_prefix: 48, roles: { laptop: { disabled: true } } },
            'off-hours': { min_history: '7d', rare_share: 0.01, roles: { ops: { disabled: true } } },
            'credential-rate': { min_issued: 5, window: '2h', roles: { fanout: { disabled: true } } },
            'request-burst': { min_requests: 100, peak: '2d', roles: { batch: { factor: 50, peak_factor: 5 } } },
            'delegation-shape': {
              min_delegations: 20,
              depth_margin: 1,
              width_factor: 3,
              roles: { swarm: { disabled: true }, etl: { min_width: 40 } },
            },
            honeytoken: { cooldown: '5m' },
          },
        },
      }),
    );
    const server = await startServer(
      resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0', config: join(dir, 'custos.json') }, dir),
      pino({ level: 'silent' }),
    );
    try {
      const rules = server.node.services().anomaly!.stats().rules;
      expect(rules.map((r) => r.rule)).toEqual([
        'dead-task-token',
        'denied-spike',
        'first-access',
        'new-source-address',
        'request-burst',
        'credential-rate',
        'off-hours',
        'delegation-shape',
        'honeytoken',
      ]);
      expect(rules[8]!.config).toEqual({ severity: 'critical', cooldownMs: 300_000, maxTracked: 10_000 });
      expect(rules[7]!.config).toMatchObject({
        minDelegations: 20,
        minHistoryMs: 86_400_000,
        depthMargin: 1,
        widthFactor: 3,
        minWidth: 8,
        roles: { swarm: { disabled: true }, etl: { minWidth: 40 } },
      });
      expect(rules[1]!.config).toMatchObject({ minDenied: 50, windowMs: 120_000, minHistoryMs: 3_600_000, factor: 10 });
      expect(rules[2]!.config).toMatchObject({
        warmupMs: 48 * 3_600_000,
        warmupEvents: 50,
        upstreams: false,
        roles: { migrator: { disabled: true }, 'gpu-infer': { warmupMs: 7_200_000 } },
      });
      expect(rules[3]!.config).toMatchObject({ ipv4Prefix: 16, ipv6Prefix: 48, roles: { laptop: { disabled: true } } });
      expect(rules[4]!.config).toMatchObject({
        minRequests: 100,
        peakMs: 2 * 86_400_000,
        factor: 10,
        roles: { batch: { factor: 50, peakFactor: 5 } },
      });
      expect(rules[6]!.config).toMatchObject({ minHistoryMs: 7 * 86_400_000, rareShare: 0.01, minEvents: 200 });
      expect(rules[5]!.config).toMatchObject({
        minIssued: 5,
        windowMs: 7_200_000,
        roles: { fanout: { disabled: true } },
      });
    } finally {
      await server.close();
    }
  });

  it('refuses, naming it, an unknown rule or setting and a value of the wrong kind', () => {
    const cases: [unknown, RegExp][] = [
      ['on', /anomaly is an object/],
      [{ rule: {} }, /anomaly\.rule is not a setting/],
      [{ rules: { 'working-hours': {} } }, /anomaly\.rules\.working-hours is not a rule/],
      [{ rules: { 'denied-spike': { min_denied: '20' } } }, /min_denied is a whole number/],
      [{ rules: { 'denied-spike': { threshold: 3 } } }, /threshold is not a setting/],
      [
        { rules: { 'denied-spike': { window: '2h', baseline: '1h' } } },
        /anomaly\.rules: need 0 < windowMs ≤ baselineMs/,
      ],
      [{ rules: { 'dead-task-token': { severity: 'urgent' } } }, /severity is one of low, medium, high, critical/],
      [{ rules: { 'dead-task-token': { cooldown: '1y' } } }, /cooldown is a duration/],
      [{ rules: { 'first-access': { actions: ['steal'] } } }, /actions is a non-empty list of policy actions/],
      [{ rules: { 'first-access': { roles: { 'Bad Role': {} } } } }, /is not a role name/],
      [{ rules: { 'first-access': { roles: { ok: { mute: true } } } } }, /ok\.mute is not a setting/],
      [{ warm_events: -1 }, /warm_events is a whole number/],
      [{ rules: { 'new-source-address': { ipv4_prefix: '24' } } }, /ipv4_prefix is a prefix length/],
      [{ rules: { 'request-burst': { roles: { batch: { warmup: '1h' } } } } }, /batch\.warmup is not a setting/],
      [{ rules: { 'request-burst': { roles: { batch: { constructor: 1 } } } } }, /batch\.constructor is not a setting/],
      [{ rules: { 'credential-rate': { roles: { x: { min_requests: 3 } } } } }, /x\.min_requests is not a setting/],
      [{ rules: { 'off-hours': { rare_share: 2 } } }, /rare_share is a share/],
      [{ rules: { 'delegation-shape': { depth_margin: -1 } } }, /depth_margin is a whole number from 0 to 100/],
      [{ rules: { 'delegation-shape': { width_factor: 0.5 } } }, /width_factor is a number from 1/],
      [{ rules: { 'delegation-shape': { roles: { x: { min_issued: 3 } } } } }, /x\.min_issued is not a setting/],
      [{ rules: { constructor: {} } }, /anomaly\.rules\.constructor is not a rule/],
      [{ rules: { 'request-burst': { window: '1h', peak: '10m' } } }, /need windowMs ≤ peakMs/],
      [{ rules: { 'new-source-address': { ipv4_prefix: 64 } } }, /anomaly\.rules: ipv4Prefix must be 8\.\.32/],
      [
        { rules: { 'request-burst': { action: 'delete-everything' } } },
        /request-burst\.action is none, or one or a list/,
      ],
      [{ rules: { 'request-burst': { action: ['none', 'suspend-role'] } } }, /action is none, or one or a list/],
      [{ rules: { 'request-burst': { action: [] } } }, /action is none, or one or a list/],
      [{ action_min_severity: 'urgent' }, /action_min_severity is one of low, medium, high, critical/],
      [{ rules: { 'first-access': { identities: { 'has space': {} } } } }, /"has space" is not an identity/],
      [{ rules: { 'first-access': { identities: { ['x'.repeat(257)]: {} } } } }, /is not an identity/],
      [
        { rules: { 'denied-spike': { identities: { 'jwt:a#b': { warmup: '1h' } } } } },
        /jwt:a#b\.warmup is not a setting/,
      ],
      [{ rules: { 'dead-task-token': { roles: { ci: { severity: 'urgent' } } } } }, /ci\.severity is one of low/],
    ];
    for (const [section, message] of cases) {
      expect(() => resolveAnomalyConfig(section), JSON.stringify(section)).toThrow(message);
    }
    expect(resolveAnomalyConfig({ enabled: false })).toEqual({ enabled: false });
  });

  it('takes per-identity settings beside per-role ones, for every rule with per-role settings', () => {
    const identity = 'jwt:https://ci.example#repo:nightly';
    const config = resolveAnomalyConfig({
      rules: {
        'dead-task-token': { roles: { ci: { severity: 'critical' } }, identities: { [identity]: { disabled: true } } },
        'denied-spike': { roles: { ci: { min_denied: 5 } }, identities: { [identity]: { factor: 20 } } },
        'first-access': { identities: { [identity]: { warmup: '2h' } } },
        'off-hours': { identities: { [identity]: { disabled: true } } },
      },
    });
    const rules = new Map(createAnomalyRules(config).map((r) => [r.name, r.config]));
    expect(rules.get('dead-task-token')).toMatchObject({
      roles: { ci: { severity: 'critical' } },
      identities: { [identity]: { disabled: true } },
    });
    expect(rules.get('denied-spike')).toMatchObject({
      roles: { ci: { minDenied: 5 } },
      identities: { [identity]: { factor: 20 } },
    });
    expect(rules.get('first-access')).toMatchObject({ identities: { [identity]: { warmupMs: 7_200_000 } } });
    expect(rules.get('off-hours')).toMatchObject({ identities: { [identity]: { disabled: true } } });
  });

  it("takes each rule's quarantine action (none, one, or a list) and the severity floor", () => {
    expect(
      resolveAnomalyConfig({
        action_min_severity: 'high',
        rules: {
          'dead-task-token': { action: 'revoke-task-tree', cooldown: '2h' },
          'request-burst': { action: ['suspend-role', 'revoke-task-tree', 'suspend-role'] },
          'off-hours': { action: 'none' },
        },
      }),
    ).toEqual({
      actions: {
        minSeverity: 'high',
        rules: {
          'dead-task-token': ['revoke-task-tree'],
          'request-burst': ['suspend-role', 'revoke-task-tree'],
          'off-hours': [],
        },
      },
      rules: { 'dead-task-token': { cooldownMs: 7_200_000 }, 'request-burst': {}, 'off-hours': {} },
    });
  });
});
