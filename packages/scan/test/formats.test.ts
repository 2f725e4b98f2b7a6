import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { fakeAwsKeyId, fakeHfToken, fakeOpenAiKey } from './support/fake-keys.js';
import {
  gguf,
  hasPython,
  onnxModel,
  pbBytes,
  pbMsg,
  python,
  safetensors,
  tar,
  tgz,
  zip,
} from './support/fixture-writers.js';
import { FixtureDir, where } from './support/scan-dir.js';

const dir = new FixtureDir();
afterAll(() => dir.cleanup());
const withPython = hasPython();
if (!withPython) console.warn('python3 not found: pickle fixture tests are skipped (they are required under CI)');

describe('pickle', () => {
  it.runIf(withPython).each([0, 1, 2, 3, 4, 5])(
    'finds a key in a pickled config, protocol %i, with its path',
    async (p) => {
      const key = fakeOpenAiKey();
      const data = python(
        `out.write(pickle.dumps({'model': 'resnet', 'config': {'openai_api_key': os.environ['K'], 'lr': 0.1, 'layers': [1, 2]}}, protocol=${p}))`,
        { K: key },
      );
      dir.write(`p${p}/config.pkl`, data);
      const r = await dir.scan([`p${p}`]);
      expect(r.errors).toEqual([]);
      expect(where(r)).toEqual([`p${p}/config.pkl › config.openai_api_key`]);
      expect(r.findings[0]).toMatchObject({ kind: 'detector', ruleId: 'openai-key', value: key });
    },
  );

  it.runIf(withPython)('names object attributes (argparse.Namespace) by attribute', async () => {
    const key = fakeHfToken();
    const data = python(
      `import argparse\nout.write(pickle.dumps({'args': argparse.Namespace(hf_token=os.environ['K'], epochs=3)}, protocol=4))`,
      { K: key },
    );
    dir.write('ns/args.pkl', data);
    const r = await dir.scan(['ns']);
    expect(where(r)).toEqual(['ns/args.pkl › args.hf_token']);
  });

  it.runIf(withPython)('reports os.system and builtins.eval imports as unsafe code, without running them', async () => {
    const data = python(
      `class A:\n  def __reduce__(self): return (os.system, ('echo pwned > /tmp/custos-never',))\nclass B:\n  def __reduce__(self): return (eval, ('1+1',))\nout.write(pickle.dumps([A(), B()], protocol=2))`,
    );
    dir.write('evil/model.pkl', data);
    const r = await dir.scan(['evil']);
    const unsafe = r.findings.filter((f) => f.kind === 'unsafe-code').map((f) => f.value);
    // Protocol 2 writes Python 2 names (__builtin__) for compatibility.
    expect(unsafe.sort()).toEqual(['__builtin__.eval', 'posix.system']);
  });

  it.runIf(withPython)('reads a PyTorch-style zip and never reads tensor storages', async () => {
    const key = fakeOpenAiKey();
    const pkl = python(
      `out.write(pickle.dumps({'state_dict': {'w': 1}, 'config': {'openai_api_key': os.environ['K']}}, protocol=2))`,
      { K: key },
    );
    // A key planted in the tensor payload must not be found: payloads are skipped by structure.
    const payload = Buffer.concat([randomBytes(100), Buffer.from(fakeOpenAiKey()), randomBytes(100)]);
    dir.write(
      'torch/model.pt',
      zip([
        { name: 'archive/data.pkl', data: pkl },
        { name: 'archive/data/0', data: payload },
        { name: 'archive/version', data: Buffer.from('3\n') },
      ]),
    );
    const r = await dir.scan(['torch']);
    expect(where(r)).toEqual(['torch/model.pt › archive/data.pkl › config.openai_api_key']);
  });

  it.runIf(withPython)('reads object arrays in .npz as pickles', async () => {
    const key = fakeAwsKeyId();
    const pkl = python(`out.write(pickle.dumps(['a', os.environ['K']], protocol=3))`, { K: key });
    const header = Buffer.from(`${"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }".padEnd(118, ' ')}\n`);
    const npy = Buffer.concat([
      Buffer.from('\x93NUMPY\x01\x00', 'latin1'),
      Buffer.from([header.length, 0]),
      header,
      pkl,
    ]);
    dir.write('npz/arrays.npz', zip([{ name: 'names.npy', data: npy, deflate: true }]));
    const r = await dir.scan(['npz']);
    expect(where(r)).toEqual(['npz/arrays.npz › names.npy › data › [1]']);
  });
});

describe('model metadata', () => {
  it('finds a key in safetensors __metadata__ and skips the tensor payload', async () => {
    const key = fakeHfToken();
    const args = JSON.stringify({ lr: 1e-4, hub_token: key });
    dir.write('st/model.safetensors', safetensors({ training_args: args }, Buffer.from(fakeOpenAiKey().padEnd(64))));
    const r = await dir.scan(['st']);
    expect(where(r)).toEqual(['st/model.safetensors › __metadata__.training_args']);
    expect(r.findings[0]?.value).toBe(key);
  });

  it('finds a key in ONNX metadata_props and doc_string, not in raw_data', async () => {
    const key = fakeHfToken();
    const doc = `exported with ${fakeAwsKeyId()}`;
    dir.write(
      'onnx/model.onnx',
      onnxModel({ metadata: { hf_token: key, author: 'me' }, docString: doc, rawData: Buffer.from(fakeOpenAiKey()) }),
    );
    const r = await dir.scan(['onnx']);
    expect(where(r)).toEqual(['onnx/model.onnx › doc_string', 'onnx/model.onnx › metadata_props[hf_token]']);
  });

  it('finds a key in GGUF metadata', async () => {
    const key = fakeHfToken();
    dir.write(
      'gguf/model.gguf',
      gguf({
        'general.architecture': 'llama',
        'general.source.url': `https://user:${key}@huggingface.co/x`,
        'llama.block_count': 2,
        'tokenizer.ggml.tokens': ['a', 'b'],
      }),
    );
    const r = await dir.scan(['gguf']);
    expect(where(r)).toEqual(['gguf/model.gguf › general.source.url']);
  });

  it('finds a key in a TensorFlow SavedModel string constant', async () => {
    const key = fakeOpenAiKey();
    const tensor = pbMsg(8, pbBytes(8, key));
    const attr = pbMsg(5, pbBytes(1, 'value'), pbMsg(2, tensor));
    const node = Buffer.concat([pbBytes(1, 'api_key'), pbBytes(2, 'Const'), attr]);
    const saved = pbMsg(2, pbMsg(2, pbMsg(1, node)));
    dir.write('tf/saved_model.pb', Buffer.concat([Buffer.from([0x08, 0x01]), saved]));
    const r = await dir.scan(['tf']);
    expect(where(r)).toEqual(['tf/saved_model.pb › meta_graphs[0].graph_def.node[0].attr[value].tensor.string_val']);
  });

  it('finds a key in Keras H5 attributes by offset', async () => {
    const key = fakeOpenAiKey();
    const h5 = Buffer.concat([
      Buffer.from('\x89HDF\r\n\x1a\n', 'latin1'),
      Buffer.alloc(56),
      Buffer.from(JSON.stringify({ class_name: 'Sequential', config: { api_key: key } })),
      Buffer.alloc(64),
    ]);
    dir.write('h5/model.h5', h5);
    const r = await dir.scan(['h5']);
    expect(where(r)).toEqual(['h5/model.h5 › @0x40']);
  });
});

describe('archives and text', () => {
  it('recurses into a zip inside a tar.gz inside a zip', async () => {
    const key = fakeAwsKeyId();
    const inner = zip([{ name: 'conf/.env', data: Buffer.from(`A=1\nAWS_ACCESS_KEY_ID=${key}\n`), deflate: true }]);
    const mid = tgz([{ name: 'bundle/inner.zip', data: inner }]);
    dir.write('nest/outer.zip', zip([{ name: 'release.tar.gz', data: mid }]));
    dir.write('nest/plain.tar', tar([{ name: 'x.txt', data: Buffer.from(`key ${key}`) }]));
    const r = await dir.scan(['nest']);
    expect(r.errors).toEqual([]);
    expect(where(r)).toEqual([
      'nest/outer.zip › release.tar.gz › bundle/inner.zip › conf/.env',
      'nest/plain.tar › x.txt',
    ]);
    const env = r.findings.find((f) => f.location.length === 3);
    expect(env?.line).toBe(2);
  });

  it('gives line and column in text, notebooks included (outputs too)', async () => {
    const key = fakeOpenAiKey();
    const nb = {
      cells: [
        { cell_type: 'code', source: ['print(1)'], outputs: [{ output_type: 'stream', text: [`key=${key}\n`] }] },
      ],
    };
    dir.write('nb/run.ipynb', JSON.stringify(nb, null, 1));
    dir.write('nb/app.py', `import os\n\nclient = OpenAI(api_key="${key}")\n`);
    const r = await dir.scan(['nb']);
    const py = r.findings.find((f) => f.file === 'nb/app.py');
    expect(py).toMatchObject({ line: 3, column: 26, ruleId: 'openai-key' });
    expect(r.findings.some((f) => f.file === 'nb/run.ipynb')).toBe(true);
  });

  it('finds secrets across the 4 MiB window edge of a large text file exactly once', async () => {
    const key = fakeOpenAiKey();
    const pad = 'x'.repeat(4 * 2 ** 20 - 4096 - 10);
    dir.write('big/log.txt', `${pad}\n ${key} \n${'y'.repeat(5000)}\n${key}\n`);
    const r = await dir.scan(['big']);
    expect(r.findings.map((f) => f.line)).toEqual([2, 4]);
  });

  it('finds known values from a secrets list', async () => {
    dir.write('known/notes.md', 'the db password is correct-horse-battery\n');
    const r = await dir.scan(['known'], { secrets: [{ name: 'db-password', value: 'correct-horse-battery' }] });
    expect(r.findings).toMatchObject([{ kind: 'known', ruleId: 'known:db-password', line: 1 }]);
  });
});
