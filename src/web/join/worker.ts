// The join page's worker: the federated client itself (the platform-free protocol client with onnxruntime-web
// and the page's files), so that the forward passes never block the page.
import { ClientEngine, FederatedClient, ModelCache, type ClientSocket, type SocketOpener } from '../../core/protocol/client.ts';
import { webCryptoSecAgg } from '../../core/secagg/webcrypto.ts';
import { prepareForModel, type PageData } from '../data.ts';
import { parseToWorker, type FromWorker, type WorkerStats } from '../messages.ts';
import { WebOrtSession, type OrtWeb } from '../ortSession.ts';

/** The worker's global scope, as much of it as this file uses (the DOM library types the page, not workers). */
declare const self: {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
  readonly location: Location;
  readonly crossOriginIsolated: boolean;
};
const post = (m: FromWorker) => self.postMessage(m);

/** onnxruntime-web, served by `baffle serve` under /ort/ (never from a CDN): WebGPU when there is an adapter. */
async function loadOrt(): Promise<{ ort: OrtWeb; backend: 'wasm' | 'webgpu' }> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  const backend = adapter ? 'webgpu' : 'wasm';
  const url = new URL(backend === 'webgpu' ? '/ort/ort.webgpu.min.mjs' : '/ort/ort.wasm.min.mjs', self.location.href).href;
  const ort = (await import(/* @vite-ignore */ url)) as OrtWeb;
  ort.env.wasm.wasmPaths = new URL('/ort/', self.location.href).href;
  // Threads need a cross-origin isolated page (the server sends COOP/COEP); one thread otherwise.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.max(1, navigator.hardwareConcurrency || 1) : 1;
  post({ type: 'backend', backend, threads: ort.env.wasm.numThreads });
  return { ort, backend };
}

const openSocket: SocketOpener = (url, subprotocol, events) => {
  const ws = new WebSocket(url, subprotocol);
  ws.binaryType = 'arraybuffer';
  ws.onerror = () => events.error('connection error');
  ws.onclose = (e) => events.close(e.code, e.reason);
  ws.onmessage = (e) => {
    const binary = e.data instanceof ArrayBuffer;
    events.message(binary ? new Uint8Array(e.data as ArrayBuffer) : new TextEncoder().encode(String(e.data)), binary);
  };
  const socket: ClientSocket = {
    send: (frame) => ws.send(frame as Uint8Array<ArrayBuffer>),
    get isOpen() {
      return ws.readyState === WebSocket.OPEN;
    },
    close: () => ws.close(),
    terminate: () => ws.close(),
  };
  return socket;
};

let client: FederatedClient | null = null;
const stats: WorkerStats = { tasks: 0, forwardPasses: 0, busyMs: 0, bytesIn: 0, bytesOut: 0, lastLoss: null, lastRound: null };

async function start(url: string, clientId: number, token: string, data: PageData): Promise<void> {
  let ortReady: Promise<{ ort: OrtWeb; backend: 'wasm' | 'webgpu' }> | null = null;
  const engine = new ClientEngine({
    createSession: async (model) => {
      ortReady ??= loadOrt();
      const { ort, backend } = await ortReady;
      return WebOrtSession.create(ort, model, backend);
    },
    loadData: (_config, model) => prepareForModel(data, model),
  });
  // Secure aggregation needs X25519 in this browser's WebCrypto; without it the client refuses a secure server.
  const secAggCrypto = (await webCryptoSecAgg()) ?? undefined;
  client = new FederatedClient(clientId, token, engine, new ModelCache(), {
    url,
    secAggCrypto,
    agent: `baffle-web/0.1 (${navigator.userAgent})`.slice(0, 200),
    open: openSocket,
    onEvent: (event) => {
      if (event.kind === 'result') {
        stats.lastRound = event.round;
        stats.lastLoss = event.loss;
      }
      Object.assign(stats, { tasks: engine.stats.tasks, forwardPasses: engine.stats.forwardPasses, busyMs: engine.stats.busyMs });
      post({ type: 'event', event });
      post({ type: 'stats', stats: { ...stats } });
    },
    onBytes: (received, sent) => {
      stats.bytesIn += received;
      stats.bytesOut += sent;
    },
  });
  await client.run();
}

self.onmessage = (e: MessageEvent) => {
  let m;
  try {
    m = parseToWorker(e.data);
  } catch (err) {
    post({ type: 'error', message: (err as Error).message });
    return;
  }
  if (m.type === 'stop') {
    client?.stop();
    return;
  }
  if (client) {
    post({ type: 'error', message: 'already running' });
    return;
  }
  start(m.url, m.clientId, m.token, m.data).catch((err) => post({ type: 'error', message: (err as Error).message }));
};
