import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CONFIG_KEYS, ConfigError, DEFAULT_CONFIG, FASHION_MNIST_DEFAULT_DIR, formatConfigHelp, overridesToLayer, parseSetOverride, resolveConfig, suggestKey } from '../src/core/config/index.ts';
import { loadConfigFile, resolveWorkers } from '../src/node/config.ts';

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'baffle-config-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run resolveConfig expecting a ConfigError; return its problem lines. */
function problems(...layers: Record<string, unknown>[]): string[] {
  try {
    resolveConfig(layers);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    assert.ok(e instanceof Error);
    assert.equal(e.problems.length, e.message.includes('\n') ? e.message.split('\n').length - 1 : 1);
    return e.problems;
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(layers)}`);
}

function oneProblem(...layers: Record<string, unknown>[]): string {
  const p = problems(...layers);
  assert.equal(p.length, 1, `expected one problem, got:\n${p.join('\n')}`);
  return p[0]!;
}

test('defaults are valid and match the reference recipe', () => {
  const c = resolveConfig([]);
  assert.deepEqual(c, { ...DEFAULT_CONFIG, hidden: [128] });
  assert.equal(c.dataset, 'mnist-10k');
  assert.equal(c.dataDir, null);
  assert.equal(c.model, 'mlp');
  assert.equal(c.activation, 'hardswish');
  assert.equal(c.norm, 'none');
  assert.equal(c.K, 100);
  assert.equal(c.sigma, 1e-4);
  assert.equal(c.seedPolicy, 'per-client');
  assert.equal(c.optimizer, 'adam');
  assert.equal(c.clip, 0.3);
  assert.equal(c.emaDecay, 0.995);
  assert.equal(c.workers, 'auto');
  // Returned config is a copy: mutating it does not touch the defaults.
  c.hidden.push(7);
  assert.deepEqual(DEFAULT_CONFIG.hidden, [128]);
  assert.ok(resolveWorkers(c) >= 1);
  assert.equal(resolveWorkers({ workers: 3 }), 3);
});

test('CONFIG_KEYS documents exactly the RunConfig keys, one line each', () => {
  assert.deepEqual(Object.keys(CONFIG_KEYS).sort(), Object.keys(DEFAULT_CONFIG).sort());
  for (const [k, doc] of Object.entries(CONFIG_KEYS)) {
    assert.ok(doc.length > 0 && !doc.includes('\n'), k);
  }
  const help = formatConfigHelp();
  assert.equal(help.split('\n').length, Object.keys(CONFIG_KEYS).length);
  assert.match(help, /sigma .*default: 0\.0001/);
});

test('JSON and TOML files load', () => {
  withTempDir((dir) => {
    const j = join(dir, 'run.json');
    writeFileSync(j, JSON.stringify({ model: 'lenet', norm: 'groupnorm', hidden: [64, 32], lr: 0.02, ema: false }));
    assert.deepEqual(loadConfigFile(j), { model: 'lenet', norm: 'groupnorm', hidden: [64, 32], lr: 0.02, ema: false });

    const t = join(dir, 'run.toml');
    writeFileSync(
      t,
      [
        '# a run',
        'dataset = "fashion-mnist"',
        'model = "wrn"',
        'depth = 16',
        'norm = "groupnorm"',
        'hidden = [256, 128]',
        'sigma = 1e-4',
        'participation = 0.5',
        'evalEvery = 50',
        'ema = true',
      ].join('\n'),
    );
    const layer = loadConfigFile(t);
    assert.deepEqual({ ...layer }, {
      dataset: 'fashion-mnist',
      model: 'wrn',
      depth: 16,
      norm: 'groupnorm',
      hidden: [256, 128],
      sigma: 1e-4,
      participation: 0.5,
      evalEvery: 50,
      ema: true,
    });
    const c = resolveConfig([layer]);
    assert.equal(c.model, 'wrn');
    assert.equal(c.depth, 16);
    assert.equal(c.evalEvery, 50);
    assert.equal(c.dataDir, FASHION_MNIST_DEFAULT_DIR, 'fashion-mnist gets its default dataDir');
  });
});

test('file errors name the file (and the line when the parser knows it)', () => {
  withTempDir((dir) => {
    const y = join(dir, 'run.yaml');
    writeFileSync(y, 'lr: 1');
    assert.throws(() => loadConfigFile(y), (e: unknown) => e instanceof ConfigError && e.message.includes(y) && /\.json or \.toml/.test(e.message));

    const missing = join(dir, 'nope.json');
    assert.throws(() => loadConfigFile(missing), (e: unknown) => e instanceof ConfigError && e.message.includes(missing));

    const badJson = join(dir, 'bad.json');
    writeFileSync(badJson, '{\n  "lr": 0.1,\n  "K": }\n');
    assert.throws(
      () => loadConfigFile(badJson),
      (e: unknown) => e instanceof ConfigError && e.message.includes(`${badJson}:3:8`) && /invalid JSON/.test(e.message),
    );

    const badJson2 = join(dir, 'bad2.json');
    writeFileSync(badJson2, '{\n  "lr": 0.1\n  "K": 3\n}\n'); // missing comma
    assert.throws(() => loadConfigFile(badJson2), (e: unknown) => e instanceof ConfigError && e.message.includes(`${badJson2}:3:`));

    const arrJson = join(dir, 'arr.json');
    writeFileSync(arrJson, '[1, 2]');
    assert.throws(() => loadConfigFile(arrJson), (e: unknown) => e instanceof ConfigError && /top level must be an object/.test(e.message));

    const badToml = join(dir, 'bad.toml');
    writeFileSync(badToml, 'lr = 0.1\nK = \n');
    assert.throws(
      () => loadConfigFile(badToml),
      (e: unknown) => e instanceof ConfigError && e.message.includes(`${badToml}:2:`) && /invalid TOML/.test(e.message),
    );
  });
});

test('--set parsing: JSON when it parses, raw string otherwise', () => {
  assert.deepEqual(parseSetOverride('lr=0.05'), { key: 'lr', value: 0.05 });
  assert.deepEqual(parseSetOverride('ema=false'), { key: 'ema', value: false });
  assert.deepEqual(parseSetOverride('hidden=[256,128]'), { key: 'hidden', value: [256, 128] });
  assert.deepEqual(parseSetOverride('maxSteps=null'), { key: 'maxSteps', value: null });
  assert.deepEqual(parseSetOverride('dataset=mnist'), { key: 'dataset', value: 'mnist' });
  assert.deepEqual(parseSetOverride('dataset="cifar10"'), { key: 'dataset', value: 'cifar10' });
  assert.deepEqual(parseSetOverride('dataDir=/data/a=b'), { key: 'dataDir', value: '/data/a=b' });
  assert.deepEqual(parseSetOverride('dataDir=2024'), { key: 'dataDir', value: '2024' });
  assert.deepEqual(parseSetOverride('evalEvery=epoch'), { key: 'evalEvery', value: 'epoch' });
  assert.throws(() => parseSetOverride('lr'), (e: unknown) => e instanceof ConfigError && e.message.includes("'lr'"));
  assert.throws(() => parseSetOverride('=3'), ConfigError);
  assert.throws(
    () => overridesToLayer(['lr=1', 'oops', 'K']),
    (e: unknown) => e instanceof ConfigError && e.problems.length === 2 && e.message.includes('oops') && e.message.includes("'K'"),
  );
  assert.deepEqual(overridesToLayer(['K=5', 'K=7', 'sigma=1e-3']), { K: 7, sigma: 1e-3 });
});

test('overrides win over the file, which wins over defaults', () => {
  withTempDir((dir) => {
    const t = join(dir, 'run.toml');
    writeFileSync(t, 'K = 500\nlr = 0.02\nclients = 4\n');
    const c = resolveConfig([loadConfigFile(t), overridesToLayer(['K=50', 'scheme=central'])]);
    assert.equal(c.K, 50);
    assert.equal(c.lr, 0.02);
    assert.equal(c.clients, 4);
    assert.equal(c.scheme, 'central');
    assert.equal(c.batchSize, DEFAULT_CONFIG.batchSize);
  });
  // undefined does not override
  assert.equal(resolveConfig([{ K: 9 }, { K: undefined }]).K, 9);
});

test('unknown keys are refused with a did-you-mean suggestion', () => {
  const p = oneProblem({ sigmaa: 1e-3 });
  assert.match(p, /unknown key 'sigmaa'.*did you mean 'sigma'\?/);
  assert.match(oneProblem({ k: 10 }), /unknown key 'k'.*did you mean 'K'/);
  assert.match(oneProblem({ batch_size: 10 }), /did you mean 'batchSize'/);
  assert.match(oneProblem({ shards_per_client: 3 }), /did you mean 'shardsPerClient'/);
  assert.match(oneProblem({ localStep: 3 }), /did you mean 'localSteps'/);
  const far = oneProblem({ learningRateSchedule: 'cosine' });
  assert.match(far, /unknown key 'learningRateSchedule'/);
  assert.doesNotMatch(far, /did you mean/);
  assert.equal(suggestKey('x'), null);
  // sources label the layer
  assert.throws(
    () => resolveConfig([{ lrr: 1 }], ['run.toml']),
    (e: unknown) => e instanceof ConfigError && /unknown key 'lrr' \(in run\.toml\); did you mean 'lr'/.test(e.message),
  );
});

test('bad enum values name the key, the value and the choices', () => {
  const p = oneProblem({ activation: 'tanh' });
  assert.match(p, /^activation: got "tanh"/);
  assert.match(p, /'hardswish', 'relu', 'selu', 'gelu'/);
  assert.match(oneProblem({ partition: 'noniid' }), /^partition: got "noniid".*'iid', 'dirichlet', 'shards'/);
  assert.match(oneProblem({ seedPolicy: 'perclient' }), /^seedPolicy: /);
});

test('out-of-range values name the key, the value and the range', () => {
  assert.match(oneProblem({ participation: 0 }), /^participation: got 0; allowed: a number in \(0, 1\]/);
  assert.match(oneProblem({ participation: 1.5 }), /^participation: got 1\.5/);
  assert.match(oneProblem({ clients: 0 }), /^clients: got 0; allowed: an integer ≥ 1/);
  assert.match(oneProblem({ beta2: 1 }), /^beta2: got 1; allowed: a number in \[0, 1\)/);
  assert.match(oneProblem({ emaDecay: 1 }), /^emaDecay: /);
  assert.match(oneProblem({ sigma: 0 }), /^sigma: got 0/);
  assert.match(oneProblem({ clip: -0.1 }), /^clip: got -0\.1.*0 = no clipping/);
  assert.match(oneProblem({ seed: 2 ** 32 }), /^seed: got 4294967296.*\[0, 4294967295\]/);
  assert.match(oneProblem({ seed: -1 }), /^seed: /);
  assert.match(oneProblem({ localSteps: 0 }), /^localSteps: got 0/); // even with fedopt 'fedsgd'
  assert.match(oneProblem({ evalEvery: 0 }), /^evalEvery: got 0.*'epoch'/);
  assert.match(oneProblem({ warmupLr: 0 }), /^warmupLr: got 0.*null/);
  assert.match(oneProblem({ hidden: [128, 0] }), /^hidden: got \[128,0\]/);
  assert.match(oneProblem({ lr: Number.POSITIVE_INFINITY }), /^lr: got Infinity/);
  // the edges that are allowed
  const c = resolveConfig([{ clip: 0, participation: 1, beta1: 0, warmupEpochs: 0, maxSteps: 0, testSubset: 0, seed: 2 ** 32 - 1, workers: 2, hidden: [] }]);
  assert.equal(c.clip, 0);
  assert.equal(c.seed, 4294967295);
});

test('wrong types name the key and the given value', () => {
  assert.match(oneProblem({ lr: '0.01' }), /^lr: got "0\.01"; allowed: a number > 0/);
  assert.match(oneProblem({ K: 10.5 }), /^K: got 10\.5; allowed: an integer ≥ 1/);
  assert.match(oneProblem({ ema: 'yes' }), /^ema: got "yes"; allowed: true or false/);
  assert.match(oneProblem({ hidden: 128 }), /^hidden: got 128; allowed: an array of positive integers/);
  assert.match(oneProblem({ dataDir: 5 }), /^dataDir: got 5/);
  assert.match(oneProblem({ workers: 'many' }), /^workers: got "many".*'auto'/);
  assert.match(oneProblem({ optimizer: { name: 'adam' } }), /^optimizer: got \{"name":"adam"\} \(object\)/);
  // via --set: an unquoted non-number becomes a string, and is refused by type
  assert.match(oneProblem(overridesToLayer(['batchSize=big'])), /^batchSize: got "big"/);
  assert.throws(
    () => resolveConfig([{}, { epochs: -1 }], ['defaults.toml', '--set']),
    (e: unknown) => e instanceof ConfigError && /epochs: got -1 \(from --set\)/.test(e.message),
  );
});

test('batchnorm is refused with the explanation', () => {
  const p = oneProblem({ model: 'lenet', norm: 'batchnorm' });
  assert.match(p, /^norm: 'batchnorm'/);
  assert.match(p, /running statistics/);
  assert.match(p, /non-IID/);
  assert.match(p, /'groupnorm' or 'none'/);
});

test('impossible combinations name both keys', () => {
  for (const dataset of ['mnist', 'cifar10']) {
    const p = oneProblem({ dataset });
    assert.match(p, new RegExp(`dataset '${dataset}' needs dataDir`));
    assert.equal(resolveConfig([{ dataset, dataDir: '/data/x' }]).dataDir, '/data/x');
  }
  const g = oneProblem({ model: 'mlp', norm: 'groupnorm' });
  assert.match(g, /model 'mlp'/);
  assert.match(g, /norm 'groupnorm'/);
  assert.equal(resolveConfig([{ model: 'lenet', norm: 'groupnorm' }]).norm, 'groupnorm');

  const w = oneProblem({ model: 'wrn', depth: 12 });
  assert.match(w, /model 'wrn' with depth 12/);
  assert.match(w, /\(depth - 4\) % 6/);
  assert.match(w, /nearest: 10 or 16/);
  assert.match(oneProblem({ model: 'wrn', depth: 4 }), /model 'wrn' with depth 4.*nearest: 10/);
  assert.equal(resolveConfig([{ model: 'wrn', depth: 28, width: 10 }]).depth, 28);
  assert.equal(resolveConfig([{ model: 'mlp', depth: 12 }]).depth, 12, 'depth only matters for wrn');

  const d = problems({ partition: 'dirichlet', alpha: 0 });
  assert.equal(d.length, 2);
  assert.ok(d.some((l) => /^alpha: got 0/.test(l)));
  assert.ok(d.some((l) => /partition 'dirichlet' needs alpha > 0/.test(l)));

  // fine combinations
  resolveConfig([{ partition: 'shards', clients: 100, shardsPerClient: 2 }]);
  resolveConfig([{ fedopt: 'fedsgd', localSteps: 3, localLr: 0.1, localOptimizer: 'adam' }]);
  resolveConfig([{ scheme: 'central', seedPolicy: 'shared', fedopt: 'fedavg' }]);
});

test('differential privacy with secure aggregation: distributed noise only, the refusal naming the keys', () => {
  const secure = { secureAggregation: true, seedPolicy: 'shared', clients: 4, dpClip: 1, noiseMultiplier: 1 };
  const p = oneProblem({ ...secure, dpNoise: 'central' });
  assert.match(p, /secureAggregation with dpClip and dpNoise 'central'/);
  assert.match(p, /use dpNoise 'distributed'/);
  assert.match(oneProblem(secure), /dpNoise 'central'/, "central is the default, so it is refused too");
  const ok = resolveConfig([{ ...secure, dpNoise: 'distributed' }]);
  assert.equal(ok.dpNoise, 'distributed');
  assert.equal(ok.secureAggregation, true);
});

test('all problems are reported together', () => {
  let err: unknown;
  try {
    resolveConfig([
      { lrr: 0.1, K: 0, activation: 'tanh' },
      { norm: 'batchnorm', dataset: 'cifar10', model: 'wrn', depth: 11 },
    ]);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError);
  const p = err.problems;
  assert.equal(p.length, 6, p.join('\n'));
  for (const needle of [/unknown key 'lrr'.*'lr'/, /^K: got 0/, /^activation: got "tanh"/, /^norm: 'batchnorm'/, /dataset 'cifar10' needs dataDir/, /model 'wrn' with depth 11/]) {
    assert.ok(p.some((l) => needle.test(l)), `missing ${needle}`);
  }
  assert.match(err.message, /invalid configuration \(6 problems\):/);
  for (const line of p) assert.ok(err.message.includes(line));
});
