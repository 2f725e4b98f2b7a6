import { describe, expect, it } from 'vitest';
import { renderTree, type TaskView } from '../src/commands/task-command.js';

const task = (id: string, parent: string | null, depth: number, extra: Partial<TaskView> = {}): TaskView => ({
  id,
  parent_id: parent,
  depth,
  role: 'r',
  sub: 'bootstrap:bac_x',
  scope: `read:kv/${id}/*`,
  labels: {},
  accessor: `tac_${id}`,
  state: 'active',
  via: 'delegation',
  created_time: '2030-01-01T00:00:00.000Z',
  expire_time: '2030-01-01T00:10:00.000Z',
  ...extra,
});

describe('task tree rendering', () => {
  it('draws siblings with ├─ and │, the last child with └─, and shows labels', () => {
    const lines = renderTree([
      task('a', null, 0, { scope: '' }),
      task('b', 'a', 1, { labels: { agent: 'researcher' } }),
      task('c', 'b', 2, { state: 'revoked' }),
      task('d', 'a', 1),
    ]).split('\n');
    expect(lines).toEqual([
      'a  r  depth=0  active  scope=(role grant)  expires=2030-01-01T00:10:00.000Z',
      '├─ b  r  depth=1  active  scope=read:kv/b/*  expires=2030-01-01T00:10:00.000Z  agent=researcher',
      '│  └─ c  r  depth=2  revoked  scope=read:kv/c/*  expires=2030-01-01T00:10:00.000Z',
      '└─ d  r  depth=1  active  scope=read:kv/d/*  expires=2030-01-01T00:10:00.000Z',
    ]);
  });

  it('a subtree asked for below the root starts at its own task', () => {
    expect(renderTree([task('b', 'a', 1), task('c', 'b', 2)]).split('\n')).toEqual([
      'b  r  depth=1  active  scope=read:kv/b/*  expires=2030-01-01T00:10:00.000Z',
      '└─ c  r  depth=2  active  scope=read:kv/c/*  expires=2030-01-01T00:10:00.000Z',
    ]);
  });
});
