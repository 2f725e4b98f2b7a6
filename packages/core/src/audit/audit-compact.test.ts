import { describe, expect, it } from 'vitest';
import {
  auditDictionaryId,
  auditEventRefs,
  compactAuditEvent,
  expandAuditEvent,
  isAuditDictionaryEntry,
  isCompactAuditEvent,
} from './audit-compact.js';
import type { AuditEvent } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';

const time = '2030-05-01T12:34:56.789Z';
const taskAuth = {
  task_id: 'tsk_AaJB4jQ7QEa12G5QaBlRRQ',
  identity: 'spiffe://custos/ns/finance/sa/enricher',
  role: 'enricher',
  display_name: 'task:tsk_AaJB4jQ7QEa12G5QaBlRRQ',
  policies: ['enrich'],
  task_chain: ['tsk_root000000000000000000', 'tsk_AaJB4jQ7QEa12G5QaBlRRQ'],
};
const operatorAuth = {
  token_accessor: 'acc_JpzNqhdaByi2yUm-KtWi_A',
  display_name: 'root',
  policies: ['root'],
  root: true,
};
const read = {
  method: 'GET',
  route: '/v1/secrets/data/*',
  path: 'kv/finance/enrichment-api',
  action: 'read',
  source_ip: '10.0.0.7',
  user_agent: 'custos-sdk/1.0',
};

/** One event of every kind the server records (as the audit plugin and services make them). */
const events: Record<string, AuditEvent> = {
  'audited read (response phase)': {
    time,
    type: 'request',
    request_id: '2394b57e-f200-4243-a2db-0442ebcd845e',
    auth: taskAuth,
    request: read,
    decision: 'allow',
    status: 200,
    details: { phase: 'response' },
  },
  'a change, request phase': {
    time,
    type: 'request',
    request_id: 'bd6b7377-5c24-490b-b415-147a5b33e8e7',
    auth: operatorAuth,
    request: {
      method: 'POST',
      route: '/v1/roles/:name/tasks',
      path: 'sys/roles/agent',
      action: 'issue',
      source_ip: '127.0.0.1',
    },
    decision: 'allow',
    status: 0,
    details: { phase: 'request' },
  },
  'task mint, response phase': {
    time,
    type: 'request',
    request_id: 'bd6b7377-5c24-490b-b415-147a5b33e8e7',
    auth: operatorAuth,
    request: {
      method: 'POST',
      route: '/v1/roles/:name/tasks',
      path: 'sys/roles/agent',
      action: 'issue',
      source_ip: '127.0.0.1',
    },
    decision: 'allow',
    status: 200,
    details: { phase: 'response', issued_task: 'tsk_Zz9y8x7w6v5u4t3s2r1q0p' },
  },
  'dynamic credential lease (HMAC in data)': {
    time,
    type: 'request',
    request_id: '0b4f8c1e-0000-4000-8000-00000000beef',
    auth: taskAuth,
    request: { method: 'POST', route: '/v1/creds/:engine/:role', path: 'pg/reader', action: 'issue', source_ip: '::1' },
    decision: 'allow',
    status: 200,
    data: { credential: `hmac-sha256:${'ab'.repeat(32)}` },
    details: { phase: 'response' },
  },
  'denied request': {
    time,
    type: 'request',
    request_id: '11111111-2222-4333-8444-555555555555',
    auth: taskAuth,
    request: { ...read, path: 'kv/other/thing' },
    decision: 'deny',
    status: 403,
    error_code: 'CUSTOS_ERR_FORBIDDEN',
    reason: 'no policy permits read on kv/other/thing',
    details: { phase: 'response', refused_task: { task_id: 'tsk_x', state: 'revoked' } },
  },
  'unauthenticated, failed, odd request id': {
    time,
    type: 'request',
    request_id: 'req-7',
    auth: {},
    request: { method: 'GET', route: 'unknown', source_ip: '127.0.0.1' },
    decision: 'error',
    status: 500,
    details: { phase: 'response' },
  },
  'per-path read (scanner fingerprints)': {
    time,
    type: 'request',
    request_id: '2394b57e-f200-4243-a2db-0442ebcd845e',
    auth: taskAuth,
    request: read,
    decision: 'allow',
    status: 200,
    details: { phase: 'path_read' },
  },
  'security alert': {
    time,
    type: 'security_alert',
    kind: 'bootstrap_token_reused',
    data: { bootstrap_token: `hmac-sha256:${'cd'.repeat(32)}` },
    details: { role: 'enricher' },
  },
  'system event, no details': { time, type: 'system', kind: 'audit_opened' },
  quarantine: {
    time,
    type: 'quarantine',
    kind: 'revoke_task_tree',
    reason: 'honeytoken touched',
    details: { finding: 'fnd_1', rule: 'honeytoken', outcome: 'done', tasks: ['tsk_a', 'tsk_b'] },
  },
};

/** A dictionary as a store keeps one. */
function dictionary() {
  const entries = new Map<string, string>();
  const intern = (value: string) => {
    const id = auditDictionaryId(value);
    const held = entries.get(id);
    if (held !== undefined && held !== value) return undefined;
    entries.set(id, value);
    return id;
  };
  return { entries, intern, lookup: (id: string) => entries.get(id) };
}

describe('compact audit events', () => {
  it.each(Object.entries(events))('round-trips %s to the exact canonical bytes, and is smaller', (_, event) => {
    const full = canonicalJson(event);
    const { intern, lookup } = dictionary();
    const compact = compactAuditEvent(full, intern, lookup);
    expect(isCompactAuditEvent(compact)).toBe(true);
    expect(expandAuditEvent(compact, lookup)).toBe(full);
    expect(compact.length).toBeLessThan(full.length);
  });

  it('request and response phases of one request share their auth and request entries', () => {
    const { entries, intern, lookup } = dictionary();
    const request = compactAuditEvent(canonicalJson(events['a change, request phase']!), intern, lookup);
    const before = entries.size;
    const response = compactAuditEvent(canonicalJson(events['task mint, response phase']!), intern, lookup);
    expect(entries.size).toBe(before);
    expect(auditEventRefs(response)).toEqual(auditEventRefs(request));
  });

  it('an audited read is under 100 bytes in its compact form', () => {
    const { intern, lookup } = dictionary();
    const compact = compactAuditEvent(canonicalJson(events['audited read (response phase)']!), intern, lookup);
    expect(compact.length).toBeLessThan(100);
  });

  it('stores in full what it cannot encode exactly: an unknown field, a non-canonical text, a taken id', () => {
    const { intern, lookup } = dictionary();
    const unknown = canonicalJson({ ...events['system event, no details']!, extra: 1 });
    expect(compactAuditEvent(unknown, intern, lookup)).toBe(unknown);
    const spaced = JSON.stringify(events['system event, no details'], null, 1);
    expect(compactAuditEvent(spaced, intern, lookup)).toBe(spaced);
    const notJson = 'not json';
    expect(compactAuditEvent(notJson, intern, lookup)).toBe(notJson);
    const oddTime = canonicalJson({ ...events['system event, no details']!, time: '2030-05-01T12:34:56Z' });
    expect(compactAuditEvent(oddTime, intern, lookup)).toBe(oddTime);
    const full = canonicalJson(events['audited read (response phase)']!);
    const refuse = () => undefined;
    expect(compactAuditEvent(full, refuse, lookup)).toBe(full);
  });

  it('a full event is its own expansion (old rows read as they were)', () => {
    const full = canonicalJson(events['denied request']!);
    expect(isCompactAuditEvent(full)).toBe(false);
    expect(expandAuditEvent(full, () => undefined)).toBe(full);
    expect(auditEventRefs(full)).toEqual([]);
  });

  it('a missing or rewritten entry does not expand to the hashed bytes', () => {
    const full = canonicalJson(events['audited read (response phase)']!);
    const { entries, intern, lookup } = dictionary();
    const compact = compactAuditEvent(full, intern, lookup);
    const [authId] = auditEventRefs(compact);
    const forged = new Map(entries);
    forged.set(authId!, canonicalJson({ ...taskAuth, role: 'admin' }));
    expect(expandAuditEvent(compact, (id) => forged.get(id))).not.toBe(full);
    // Content addressing shows the forged entry on its own, before any hash is checked.
    expect(isAuditDictionaryEntry(authId!, forged.get(authId!)!)).toBe(false);
    const missing = new Map(entries);
    missing.delete(authId!);
    expect(expandAuditEvent(compact, (id) => missing.get(id))).toBe(compact);
    expect(expandAuditEvent(compact.replace('"s":200', '"s":"x"'), lookup)).not.toBe(full);
    expect(expandAuditEvent('{"v":1,broken', lookup)).toBe('{"v":1,broken');
  });
});
