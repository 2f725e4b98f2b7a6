import { it } from 'vitest';
import { createRedactor } from '../src/index.js';
import { Fake } from '../src/test-support/fake-credentials.js';

it('dbg', () => {
  const fake = new Fake(11);
  const known = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}`, value: `${fake.password(8 + (i % 12))}` }));
  const r = createRedactor({ secrets: known });
  console.log(known[6], known[16]);
  const t = '0e2VnZ8LItsJab3QOJtAo%5E!l%23';
  console.log(JSON.stringify(r.findAll(t)));
  const s = r.createStream();
  const outs = [...t].map((c) => [c, s.write(c), s.held]);
  outs.push(['END', s.end(), 0]);
  console.log(JSON.stringify(outs));
});
