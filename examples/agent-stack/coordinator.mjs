// The coordinator: starts from a single-use bootstrap token, and hands each
// sub-agent a narrower slice of its own task — never a key.
//   - the enrichment agent (Node): `issue` on warehouse/reader only, so it can
//     get a database user of its own and nothing else;
//   - the model agent (Python, unmodified): `use` on upstream/fake-llm only,
//     run under `custos run --delegate --proxy`, so its LLM key is attached on
//     the wire by custos and redacted from the answers.
// At the end it revokes its whole tree; the model agent's next call is refused.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Custos } from '@custos/sdk';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));
const custosBin = fileURLToPath(new URL('../../packages/cli/bin/custos.js', import.meta.url));
const custos = new Custos({ address: process.env.CUSTOS_ADDR });

/** Runs a sub-agent, its output shown as it comes; resolves with its exit code. */
function start(command, args, env, onLine = () => undefined) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  createInterface({ input: child.stdout }).on('line', (line) => {
    console.log(`  ${line}`);
    onLine(line, child);
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited };
}

await custos.withTask({ bootstrap: process.env.CUSTOS_BOOTSTRAP, ttl: '10m' }, async (task) => {
  console.log(`coordinator: logged in with the bootstrap token: task ${task.id}`);

  await task.withChild({ scope: 'issue:warehouse/reader', ttl: '2m' }, async (child) => {
    console.log(`coordinator: delegated task ${child.id} (issue:warehouse/reader) to the enrichment agent`);
    const { exited } = start(process.execPath, [here('./enrichment-agent.mjs')], { CUSTOS_TOKEN: child.token });
    if ((await exited) !== 0) throw new Error('the enrichment agent failed');
  });

  console.log('coordinator: running the model agent under custos run --delegate --proxy (use:upstream/fake-llm)');
  let revoked;
  const model = start(
    process.execPath,
    [
      custosBin,
      'run',
      '--delegate',
      '--scope',
      'use:upstream/fake-llm',
      '--ttl',
      '2m',
      '--secret',
      'LLM_API_KEY=kv/llm/fake#api_key',
      '--proxy',
      process.env.CUSTOS_PROXY_ADDR,
      '--',
      'python3',
      here('./model_agent.py'),
    ],
    { CUSTOS_TOKEN: task.token },
    (line, child) => {
      if (!line.startsWith('model: waiting')) return;
      revoked = (async () => {
        console.log(`coordinator: revoking its whole task tree (${task.id})`);
        await task.revoke();
        child.stdin.end('go\n');
      })();
    },
  );
  await model.exited;
  await revoked;
});
console.log('coordinator: done');
