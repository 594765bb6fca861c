// The error contract of every command (docs/cli.md), one row per case: a refused command prints one line
// `baffle: <what is wrong>` (plus at most one `  hint:` line) on stderr, no stack trace, exits with the documented
// code, and does so before any work — no data loaded, no training, no file or directory left where none should be.
//
// Rows spawn the real CLI (bin/baffle.js). Strings in args may hold placeholders: {dir} (the row's own empty
// temporary directory, also its working directory), {fx} (the shared fixtures below), {busy} (a port this test
// holds), {auth} (a fake server that refuses every client), {closed} (a port nobody listens on).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { CloseCode } from '../src/core/protocol/protocol.ts';
import { formatTokens, makeTokens } from '../src/node/net/tokens.ts';
import { Graph, noWeights, torchCnn, torchMlp } from './onnxFixtures.ts';

const BIN = new URL('../bin/baffle.js', import.meta.url).pathname;
const ROOT = process.getuid?.() === 0;

interface Row {
  name: string;
  args: string[];
  /** Creates the files the row needs in its own directory. */
  setup?(dir: string): void;
  /** Working directory (default: the row's directory). */
  cwd?: string;
  code: number;
  /** The one `baffle: …` line. */
  stderr: RegExp;
  /** The hint line, when the row insists on one. */
  hint?: RegExp;
  /** Paths (placeholders allowed) that must not exist afterwards. */
  noFile?: string[];
  /** A reason to skip the row. */
  skip?: string | false;
}

// ---------------------------------------------------------------------------------------------------
// Shared fixtures

const FX = mkdtempSync(join(tmpdir(), 'baffle-errors-fx-'));
{
  writeFileSync(join(FX, 'mlp.onnx'), torchMlp());
  writeFileSync(join(FX, 'rgb.onnx'), torchCnn()); // input [batch, 3, 12, 12]
  const mlp = torchMlp();
  writeFileSync(join(FX, 'truncated.onnx'), mlp.subarray(0, mlp.length >> 1));
  writeFileSync(join(FX, 'random.onnx'), Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919 + 13) % 251));
  writeFileSync(join(FX, 'image.onnx'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64)]));
  const g = new Graph();
  g.input('input', ['batch', 1, 28, 28]);
  const flat = g.node('Flatten', '/flatten/Flatten', ['input'], { axis: 1 });
  const h = g.node('Gemm', '/fc/Gemm', [flat, g.weight('fc.weight', [10, 784]), g.weight('fc.bias', [10])], { transB: 1 });
  g.node('FancyOp', '/fancy/FancyOp', [h], {}, ['output']);
  g.output('output', ['batch', 10]);
  writeFileSync(join(FX, 'no-weights.onnx'), noWeights());
  writeFileSync(join(FX, 'pairs.onnx'), torchMlp({ pairs: true })); // output [batch, 5, 2]
  writeFileSync(join(FX, 'unsupported.onnx'), g.model({ opset: 17, irVersion: 8, producer: ['pytorch', '2.5.1'] }));
  writeFileSync(join(FX, 'tokens.json'), formatTokens(makeTokens(3)), { mode: 0o600 });
  writeFileSync(join(FX, 'not-json.json'), 'client0=secret\n');
  writeFileSync(join(FX, 'file'), 'a regular file\n');
  writeFileSync(join(FX, 'not-a-cert.pem'), 'hello\n');
  mkdirSync(join(FX, 'empty'));
  // A directory that holds a run (its config), but no weights yet: it stopped before its first step.
  mkdirSync(join(FX, 'run'));
  writeFileSync(join(FX, 'run', 'config.json'), '{}\n');
}

const ports = { busy: 0, auth: 0, closed: 0 };
let busy: Server;
let auth: WebSocketServer;

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));

before(async () => {
  busy = createServer();
  ports.busy = await listen(busy);
  const closed = createServer();
  ports.closed = await listen(closed);
  await new Promise((r) => closed.close(r));
  // A server that takes the WebSocket upgrade and closes it as a failed authentication.
  auth = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => p.values().next().value ?? false });
  auth.on('connection', (ws) => ws.close(CloseCode.auth, 'authentication failed for client 0'));
  await new Promise((r) => auth.once('listening', r));
  ports.auth = (auth.address() as { port: number }).port;
});

after(() => {
  busy?.close();
  auth?.close();
  rmSync(FX, { recursive: true, force: true });
});

const write = (dir: string, name: string, text: string) => writeFileSync(join(dir, name), text);
const suiteDir = (dir: string, runFile: string) => {
  mkdirSync(join(dir, 'suite'));
  write(join(dir, 'suite'), 'suite.toml', 'title = "errors"\n[base]\nmaxSteps = 1\n');
  write(join(dir, 'suite'), 'a.toml', runFile);
};

// ---------------------------------------------------------------------------------------------------
// The table

const OUT = '{dir}/out';

const ROWS: Row[] = [
  // help, unknown commands and flags
  { name: 'unknown command', args: ['frobnicate'], code: 2, stderr: /unknown command 'frobnicate'/, hint: /run, serve, join/ },
  { name: 'no command', args: [], code: 2, stderr: /no command given/ },
  { name: 'run: unknown flag', args: ['run', '--bogus'], code: 2, stderr: /run: Unknown option '--bogus'/, hint: /baffle run --help/ },
  { name: 'keys: an argument', args: ['keys', 'extra'], code: 2, stderr: /keys takes no arguments \(got extra\)/ },

  // run: the configuration
  { name: 'run: missing config', args: ['run', '--config', '{dir}/nope.json', '--out', OUT], code: 2, stderr: /nope\.json': cannot read it \(no such file/, noFile: [OUT] },
  { name: 'run: config is a directory', setup: (d) => mkdirSync(join(d, 'conf.json')), args: ['run', '--config', '{dir}/conf.json', '--out', OUT], code: 2, stderr: /conf\.json': cannot read it \(it is a directory\)/, noFile: [OUT] },
  { name: 'run: config behind a regular file', args: ['run', '--config', '{fx}/file/c.toml', '--out', OUT], code: 2, stderr: /file\/c\.toml': cannot read it \(a part of the path is a file/, noFile: [OUT] },
  {
    name: 'run: unreadable config (mode 000)',
    skip: ROOT && 'root reads a file whatever its mode (the row above covers an unreadable path)',
    setup: (d) => {
      write(d, 'locked.toml', 'K = 5\n');
      chmodSync(join(d, 'locked.toml'), 0);
    },
    args: ['run', '--config', '{dir}/locked.toml', '--out', OUT],
    code: 2,
    stderr: /locked\.toml': cannot read it \(permission denied\)/,
    noFile: [OUT],
  },
  { name: 'run: malformed JSON config', setup: (d) => write(d, 'bad.json', '{ "K": '), args: ['run', '--config', '{dir}/bad.json', '--out', OUT], code: 2, stderr: /bad\.json:1:\d+': invalid JSON/, noFile: [OUT] },
  { name: 'run: malformed TOML config', setup: (d) => write(d, 'bad.toml', 'K = = 3\n'), args: ['run', '--config', '{dir}/bad.toml', '--out', OUT], code: 2, stderr: /bad\.toml:1:\d+': invalid TOML/, noFile: [OUT] },
  { name: 'run: unknown key in a config file', setup: (d) => write(d, 'c.toml', 'lrr = 0.1\n'), args: ['run', '--config', '{dir}/c.toml', '--out', OUT], code: 2, stderr: /unknown key 'lrr' \(in .*c\.toml\).*did you mean 'lr'/, noFile: [OUT] },

  // run: the run directory
  { name: 'run: --resume with --config', args: ['run', '--resume', '{fx}/run', '--config', '{dir}/c.json'], code: 2, stderr: /run --resume DIR .*drop --config/ },
  { name: 'run: --resume a missing directory', args: ['run', '--resume', '{dir}/gone'], code: 2, stderr: /--resume .*gone: no such directory/ },
  { name: 'run: --resume a file', args: ['run', '--resume', '{fx}/file'], code: 2, stderr: /--resume .*file: is a file, not a run directory/ },
  { name: 'run: --resume a directory without a run', args: ['run', '--resume', '{fx}/empty'], code: 2, stderr: /--resume .*empty: no config\.json there/, hint: /baffle run --out/ },
  { name: 'run: --out under a regular file', args: ['run', '--out', '{fx}/file/run'], code: 2, stderr: /--out .*file\/run: cannot create the directory \(.*file is a file/, noFile: ['{fx}/file/run'] },
  { name: 'run: --out is a regular file', args: ['run', '--out', '{fx}/file'], code: 2, stderr: /--out .*file: is a file, not a directory/ },
  {
    name: 'run: --out already holds a run',
    setup: (d) => {
      mkdirSync(join(d, 'out'));
      write(join(d, 'out'), 'metrics.jsonl', '');
    },
    args: ['run', '--out', OUT],
    code: 2,
    stderr: /--out .*out already holds a run \(metrics\.jsonl\)/,
    hint: /baffle run --resume .*--force/,
    noFile: [`${OUT}/config.json`],
  },

  // run: the model and the data
  { name: 'run: perturbation lowrank with the backprop baseline', args: ['run', '--set', 'perturbation=lowrank', '--set', 'algorithm=bp', '--out', OUT], code: 2, stderr: /perturbation 'lowrank' with algorithm 'bp'/, noFile: [OUT] },
  { name: 'run: missing model file', args: ['run', '--set', 'model={dir}/nope.onnx', '--out', OUT], code: 2, stderr: /model file '.*nope\.onnx' does not exist/, noFile: [OUT] },
  { name: 'run: model is a directory', setup: (d) => mkdirSync(join(d, 'm.onnx')), args: ['run', '--set', 'model={dir}/m.onnx', '--out', OUT], code: 2, stderr: /model file '.*m\.onnx' is a directory, not a file/, noFile: [OUT] },
  { name: 'run: model is random bytes', args: ['run', '--set', 'model={fx}/random.onnx', '--out', OUT], code: 2, stderr: /random\.onnx is not an ONNX model/, noFile: [OUT] },
  { name: 'run: truncated model', args: ['run', '--set', 'model={fx}/truncated.onnx', '--out', OUT], code: 2, stderr: /truncated\.onnx is truncated/, hint: /copy the file again/, noFile: [OUT] },
  { name: 'run: a PNG renamed .onnx', args: ['run', '--set', 'model={fx}/image.onnx', '--out', OUT], code: 2, stderr: /image\.onnx is not an ONNX model/, hint: /PNG image/, noFile: [OUT] },
  { name: 'run: model without float initializers', args: ['run', '--set', 'model={fx}/no-weights.onnx', '--out', OUT], code: 2, stderr: /no-weights\.onnx.*(no float|float32 initializer)/i, noFile: [OUT] },
  { name: 'run: model whose output is not [batch, classes]', args: ['run', '--set', 'model={fx}/pairs.onnx', '--out', OUT], code: 2, stderr: /pairs\.onnx: the output 'output' is \[.*\], an output that is not \[batch, classes\]/, noFile: [OUT] },
  { name: 'run: model with an unsupported op', args: ['run', '--set', 'model={fx}/unsupported.onnx', '--out', OUT], code: 2, stderr: /unsupported\.onnx: unsupported op FancyOp/, hint: /Supported ops/, noFile: [OUT] },
  { name: 'run: trainable selector matching nothing', args: ['run', '--set', 'model={fx}/mlp.onnx', '--set', 'trainable=name:nope*', '--out', OUT], code: 2, stderr: /mlp\.onnx: the selector 'name:nope\*' matches no trainable candidate/, hint: /fc1\.weight/, noFile: [OUT] },
  { name: 'run: 3-channel model on mnist-10k', args: ['run', '--set', 'model={fx}/rgb.onnx', '--out', OUT], code: 2, stderr: /rgb\.onnx takes input \[3,12,12\]: 3 channels, but mnist-10k images have 1/, noFile: [OUT] },
  { name: 'run: data directory is a file', args: ['run', '--set', 'dataset=mnist', '--set', 'dataDir={fx}/file', '--out', OUT], code: 2, stderr: /mnist: data directory .*file is a file, not a directory/, noFile: [OUT] },
  { name: 'run: missing init', args: ['run', '--set', 'init={dir}/gone.onnx', '--out', OUT], code: 2, stderr: /init file '.*gone\.onnx' does not exist/, noFile: [OUT] },

  // serve
  { name: 'serve: perturbation lowrank', args: ['serve', '--tokens', '{fx}/tokens.json', '--port', '0', '--set', 'perturbation=lowrank', '--out', OUT], code: 2, stderr: /perturbation 'lowrank' with baffle serve/, noFile: [OUT] },
  { name: 'serve: port in use', args: ['serve', '--tokens', '{fx}/tokens.json', '--port', '{busy}', '--out', OUT], code: 2, stderr: /port \d+ on 127\.0\.0\.1 is in use by another process/, hint: /--port/, noFile: [OUT] },
  { name: 'serve: --tls-cert without --tls-key', args: ['serve', '--tokens', '{fx}/tokens.json', '--tls-cert', '{fx}/not-a-cert.pem', '--out', OUT], code: 2, stderr: /--tls-cert and --tls-key go together/, noFile: [OUT] },
  { name: 'serve: missing TLS certificate', args: ['serve', '--tokens', '{fx}/tokens.json', '--tls-cert', '{dir}/cert.pem', '--tls-key', '{dir}/key.pem', '--port', '0', '--out', OUT], code: 2, stderr: /--tls-cert '.*cert\.pem' does not exist/, noFile: [OUT] },
  { name: 'serve: TLS files that are not PEM', args: ['serve', '--tokens', '{fx}/tokens.json', '--tls-cert', '{fx}/not-a-cert.pem', '--tls-key', '{fx}/not-a-cert.pem', '--port', '0', '--out', OUT], code: 2, stderr: /--tls-cert .*not-a-cert\.pem .*not a usable PEM certificate/, noFile: [OUT] },
  { name: 'serve: missing tokens file', args: ['serve', '--tokens', '{dir}/tokens.json', '--port', '0', '--out', OUT], code: 2, stderr: /tokens file '.*tokens\.json': no such file/, hint: /baffle tokens/, noFile: [OUT] },
  { name: 'serve: tokens file that is not JSON', args: ['serve', '--tokens', '{fx}/not-json.json', '--port', '0', '--out', OUT], code: 2, stderr: /tokens file '.*not-json\.json': not JSON/, noFile: [OUT] },
  { name: 'serve: tokens file is a directory', args: ['serve', '--tokens', '{fx}/empty', '--port', '0', '--out', OUT], code: 2, stderr: /tokens file '.*empty': it is a directory/, noFile: [OUT] },
  { name: 'serve: --out under a regular file', args: ['serve', '--tokens', '{fx}/tokens.json', '--port', '0', '--out', '{fx}/file/run'], code: 2, stderr: /--out .*file\/run: cannot create the directory/ },
  { name: 'serve: --out already holds a run', args: ['serve', '--tokens', '{fx}/tokens.json', '--port', '0', '--out', '{fx}/run'], code: 2, stderr: /--out .*run already holds a run \(config\.json\)/, hint: /baffle serve --resume .*--force/ },
  { name: 'serve: the backprop baseline', args: ['serve', '--tokens', '{fx}/tokens.json', '--set', 'algorithm=bp', '--port', '0', '--out', OUT], code: 2, stderr: /algorithm 'bp' .*runs in `baffle run` only/, noFile: [OUT] },

  // join
  { name: 'join: an http:// URL', args: ['join', 'http://127.0.0.1:7100', '--tokens', '{fx}/tokens.json'], code: 2, stderr: /join: 'http:\/\/127\.0\.0\.1:7100' must start with ws:\/\/ or wss:\/\// },
  { name: 'join: --data with --data-dir', args: ['join', 'ws://127.0.0.1:{closed}', '--tokens', '{fx}/tokens.json', '--client', '0', '--data', '{fx}/empty', '--data-dir', '{fx}/empty'], code: 2, stderr: /join: give --data .* or --data-dir .*, not both/ },
  { name: 'join: missing tokens file', args: ['join', 'ws://127.0.0.1:{closed}', '--tokens', '{dir}/t.json'], code: 2, stderr: /tokens file '.*t\.json': no such file/ },
  { name: 'join: missing --ca', args: ['join', 'wss://127.0.0.1:{closed}', '--tokens', '{fx}/tokens.json', '--ca', '{dir}/ca.pem'], code: 2, stderr: /join: --ca '.*ca\.pem' does not exist/ },
  { name: 'join: --ca that is not a certificate', args: ['join', 'wss://127.0.0.1:{closed}', '--tokens', '{fx}/tokens.json', '--ca', '{fx}/not-a-cert.pem'], code: 2, stderr: /join: --ca .*not-a-cert\.pem: not a PEM certificate/ },
  { name: 'join: missing --data directory', args: ['join', 'ws://127.0.0.1:{closed}', '--tokens', '{fx}/tokens.json', '--client', '0', '--data', '{dir}/mine'], code: 2, stderr: /--data .*mine: no such directory/ },
  { name: 'join: --data without IDX files', args: ['join', 'ws://127.0.0.1:{closed}', '--tokens', '{fx}/tokens.json', '--client', '0', '--data', '{fx}/empty'], code: 2, stderr: /empty: no train-images-idx3-ubyte/ },
  { name: 'join: --data-dir is a file', args: ['join', 'ws://127.0.0.1:{closed}', '--tokens', '{fx}/tokens.json', '--data-dir', '{fx}/file'], code: 2, stderr: /join: --data-dir .*file: is a file, not a directory/ },
  { name: 'join: refused by the server', args: ['join', 'ws://127.0.0.1:{auth}', '--tokens', '{fx}/tokens.json', '--client', '0', '--give-up', '20'], code: 3, stderr: /the server at ws:\/\/127\.0\.0\.1:\d+ refused client 0: .*authentication failed/ },
  { name: 'join: no server, gives up', args: ['join', 'ws://127.0.0.1:{closed}', '--tokens', '{fx}/tokens.json', '--client', '0', '--give-up', '1'], code: 4, stderr: /gave up on ws:\/\/127\.0\.0\.1:\d+: client 0 had no connection for 1 s/, hint: /--give-up/ },

  // tokens
  { name: 'tokens: --out under a regular file', args: ['tokens', '--clients', '3', '--out', '{fx}/file/t.json'], code: 2, stderr: /tokens: --out .*file\/t\.json: cannot create it \(.*file is a file/ },
  { name: 'tokens: --out is a directory', args: ['tokens', '--clients', '3', '--out', '{fx}/empty', '--force'], code: 2, stderr: /tokens: --out .*empty is a directory, not a file/ },
  { name: 'tokens: --out exists', setup: (d) => write(d, 't-part2.json', '{}'), args: ['tokens', '--clients', '4', '--parts', '2', '--out', '{dir}/t.json'], code: 2, stderr: /tokens: .*t-part2\.json exists/, hint: /--force/, noFile: ['{dir}/t.json', '{dir}/t-part1.json'] },
  { name: 'tokens: --clients 0', args: ['tokens', '--clients', '0', '--out', '{dir}/t.json'], code: 2, stderr: /tokens: --clients must be a positive integer, got '0'/, noFile: ['{dir}/t.json'] },

  // report
  { name: 'report: missing directory', args: ['report', '{dir}/gone'], code: 2, stderr: /report: .*gone: no such directory/ },
  { name: 'report: a file for a directory', args: ['report', '{fx}/file'], code: 2, stderr: /report: .*file: is a file, not a directory/ },
  { name: 'report: nothing to report', args: ['report', '{fx}/empty', '--out', OUT], code: 2, stderr: /report: no run directories, suites or memory measurements in .*empty/, noFile: [OUT] },
  { name: 'report: missing --intro', args: ['report', '{fx}/empty', '--intro', '{dir}/intro.md', '--out', OUT], code: 2, stderr: /report: --intro '.*intro\.md' does not exist/, noFile: [OUT] },
  { name: 'report: --out under a regular file', args: ['report', '{fx}/empty', '--out', '{fx}/file/report'], code: 2, stderr: /report: --out .*file\/report: cannot create the directory/ },

  // suite
  { name: 'suite: missing directory', args: ['suite', '{dir}/gone'], code: 2, stderr: /suite '.*gone': no such directory/, noFile: ['{dir}/runs'] },
  { name: 'suite: a run names a model file that does not exist', setup: (d) => suiteDir(d, 'model = "nowhere.onnx"\n'), args: ['suite', '{dir}/suite', '--out', OUT], code: 2, stderr: /run 'a': model '.*nowhere\.onnx' does not exist/, noFile: [OUT] },
  { name: 'suite: a run refers to a run that is not in the suite', setup: (d) => suiteDir(d, 'init = "run:pretrain"\n'), args: ['suite', '{dir}/suite', '--out', OUT], code: 2, stderr: /run 'a': 'run:pretrain' names no other run of the suite/, noFile: [OUT] },
  { name: 'suite: malformed run file', setup: (d) => suiteDir(d, 'K = = 1\n'), args: ['suite', '{dir}/suite', '--out', OUT], code: 2, stderr: /a\.toml:1:\d+': invalid TOML/, noFile: [OUT] },
  { name: 'suite: unknown key in a run file', setup: (d) => suiteDir(d, 'nokey = 1\n'), args: ['suite', '{dir}/suite', '--out', OUT], code: 2, stderr: /run 'a': unknown key 'nokey'/, noFile: [OUT] },
  { name: 'suite: --only names no run', setup: (d) => suiteDir(d, 'K = 2\n'), args: ['suite', '{dir}/suite', '--only', 'zz', '--out', OUT], code: 2, stderr: /--only: no run named zz/, noFile: [OUT] },
  { name: 'suite: --out under a regular file', setup: (d) => suiteDir(d, 'K = 2\n'), args: ['suite', '{dir}/suite', '--out', '{fx}/file/suite'], code: 2, stderr: /suite: --out .*file\/suite/ },

  // memory
  { name: 'memory: unknown mode', args: ['memory', '--modes', 'idle,foo', '--out', OUT], code: 2, stderr: /--modes: unknown mode 'foo'/, noFile: [OUT] },
  { name: 'memory: tfjs mode of an ONNX model', args: ['memory', '--set', 'model={fx}/mlp.onnx', '--modes', 'idle,bp-tfjs', '--out', OUT], code: 2, stderr: /memory: mode bp-tfjs runs the zoo models in tfjs/, hint: /--modes idle,baffle-ort/, noFile: [OUT] },
  { name: 'memory: --out under a regular file', args: ['memory', '--modes', 'idle', '--out', '{fx}/file/memory'], code: 2, stderr: /memory: --out .*file\/memory: cannot create the directory/ },

  // inspect
  { name: 'inspect: missing model', args: ['inspect', '{dir}/nope.onnx'], code: 2, stderr: /model file '.*nope\.onnx' does not exist/ },
  { name: 'inspect: a directory', args: ['inspect', '{fx}/empty'], code: 2, stderr: /model file '.*empty' is a directory, not a file/ },
  { name: 'inspect: a key other than trainable', args: ['inspect', '{fx}/mlp.onnx', '--set', 'K=3'], code: 2, stderr: /inspect: only --set trainable=… applies \(not K\)/ },

  // export
  { name: 'export: not a run directory', args: ['export', '{fx}/empty'], code: 2, stderr: /export: .*empty: no config\.json there \(not a run directory\)/ },
  { name: 'export: missing directory', args: ['export', '{dir}/gone'], code: 2, stderr: /export: .*gone: no such directory/ },
  { name: 'export: a run without weights', args: ['export', '{fx}/run', '--out', '{dir}/m.onnx'], code: 2, stderr: /export: .*run has neither a checkpoint nor weights\.bin/, noFile: ['{dir}/m.onnx'] },
  { name: 'export: --out under a regular file', args: ['export', '{fx}/run', '--out', '{fx}/file/m.onnx'], code: 2, stderr: /export: --out .*file\/m\.onnx: cannot create it/ },

  // eval
  { name: 'eval: missing model', args: ['eval', '{dir}/nope.onnx'], code: 2, stderr: /model file '.*nope\.onnx' does not exist/ },
  { name: 'eval: 3-channel model on mnist-10k', args: ['eval', '{fx}/rgb.onnx'], code: 2, stderr: /eval: .*rgb\.onnx takes input \[3,12,12\]: 3 channels, but mnist-10k images have 1/ },
  { name: 'eval: a training key', args: ['eval', '{fx}/mlp.onnx', '--set', 'K=1'], code: 2, stderr: /eval: only dataset, .* apply \(not K\)/ },
  { name: 'eval: missing data directory', args: ['eval', '{fx}/mlp.onnx', '--set', 'dataset=mnist', '--set', 'dataDir={dir}/nowhere'], code: 2, stderr: /mnist: data directory .*nowhere does not exist/ },
];

// ---------------------------------------------------------------------------------------------------
// Running a row

function fill(s: string, dir: string): string {
  return s
    .replaceAll('{dir}', dir)
    .replaceAll('{fx}', FX)
    .replaceAll('{busy}', String(ports.busy))
    .replaceAll('{auth}', String(ports.auth))
    .replaceAll('{closed}', String(ports.closed));
}

function baffle(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BAFFLE_DEBUG: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

const timings: { name: string; ms: number }[] = [];

describe('every command refuses bad input with one line and a documented exit code, before any work', { concurrency: 6 }, () => {
  after(() => {
    const total = timings.reduce((s, t) => s + t.ms, 0);
    const slowest = [...timings].sort((a, b) => b.ms - a.ms).slice(0, 3);
    console.log(`${timings.length} rows, ${(total / 1000).toFixed(1)} s of processes; slowest: ${slowest.map((t) => `${t.name} ${(t.ms / 1000).toFixed(1)} s`).join(', ')}`);
  });
  assert.ok(ROWS.length >= 40, 'at least 40 rows');
  assert.equal(new Set(ROWS.map((r) => r.name)).size, ROWS.length, 'row names are unique');

  it('--debug (or BAFFLE_DEBUG=1) adds the stack trace after the line', async () => {
    for (const [args, env] of [[['frobnicate', '--debug'], {}], [['frobnicate'], { BAFFLE_DEBUG: '1' }]] as const) {
      const r = await baffle([...args], FX, env);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^baffle: unknown command 'frobnicate'\n {2}hint: .*\n.*UsageError/);
      assert.match(r.stderr, /^\s+at /m);
    }
  });

  for (const row of ROWS) {
    it(row.name, { skip: row.skip || false }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'baffle-errors-'));
      try {
        row.setup?.(dir);
        const args = row.args.map((a) => fill(a, dir));
        const r = await baffle(args, row.cwd ? fill(row.cwd, dir) : dir);
        timings.push({ name: row.name, ms: r.ms });
        const context = `baffle ${args.join(' ')}\n--- stderr:\n${r.stderr}--- stdout:\n${r.stdout.slice(0, 2000)}`;
        assert.equal(r.code, row.code, `exit code\n${context}`);
        const lines = r.stderr.split('\n').filter((l) => l !== '');
        assert.ok(lines.length === 1 || lines.length === 2, `one line, plus at most one hint line\n${context}`);
        assert.match(lines[0]!, /^baffle: /, context);
        assert.doesNotMatch(lines[0]!, /internal error/, context);
        assert.match(lines[0]!, row.stderr, context);
        if (lines.length === 2) assert.match(lines[1]!, /^ {2}hint: \S/, context);
        if (row.hint) assert.match(lines[1] ?? '', row.hint, `hint\n${context}`);
        for (const out of [r.stderr, r.stdout]) assert.doesNotMatch(out, /^\s+at /m, `no stack trace\n${context}`);
        // Before any work: nothing was loaded or trained.
        assert.doesNotMatch(r.stdout, /^(data:|federation:|model:|epoch|step |training|waiting for|listening on)/m, `no work started\n${context}`);
        for (const p of row.noFile ?? []) assert.equal(existsSync(fill(p, dir)), false, `${fill(p, dir)} must not exist\n${context}`);
        assert.ok(r.ms < 30_000, `refused in ${(r.ms / 1000).toFixed(1)} s`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
