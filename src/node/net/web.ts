// The pages `baffle serve` serves beside the WebSocket endpoint: /join (a browser tab becomes a client) and
// /dashboard (the live, read-only view of the federation, with vega and vega-lite bundled in), their scripts
// bundled from src/web with esbuild and kept in memory, and onnxruntime-web's own files under /ort/ from the
// installed package. Nothing comes from a CDN: the pages work offline. The pages hold no run data: the
// dashboard's comes from /events (server.ts), which checks the dashboard token.
//
// Every response is cross-origin isolated (COOP same-origin, COEP require-corp) so that onnxruntime-web can use
// threads (SharedArrayBuffer) where the browser allows them.
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const WEB = fileURLToPath(new URL('../../web/', import.meta.url));
// The package exports no package.json; its CommonJS entry lies in dist/, beside the ES modules and the WebAssembly.
const ORT_DIST = dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
/** onnxruntime-web files a page may load: its ES module builds and their WebAssembly. */
const ORT_FILE = /^(ort(\.wasm|\.webgpu)?\.min\.mjs|ort-wasm-simd-threaded(\.jsep)?\.(mjs|wasm))$/;

const ISOLATED = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** The page scripts: entry point (under src/web) by URL path. */
const BUNDLES: Record<string, string> = {
  '/join/page.js': 'join/page.ts',
  '/join/worker.js': 'join/worker.ts',
  '/dashboard/page.js': 'dashboard/page.ts',
};

/** The HTML pages: file under src/web by URL path. */
const PAGES: Record<string, string> = {
  '/join': 'join/index.html',
  '/join/': 'join/index.html',
  '/dashboard': 'dashboard/index.html',
  '/dashboard/': 'dashboard/index.html',
};

export class WebPages {
  private readonly bundles = new Map<string, Promise<Uint8Array>>();

  /** A bundle of src/web/`entry` (built once). */
  private bundle(entry: string): Promise<Uint8Array> {
    let b = this.bundles.get(entry);
    if (!b) {
      b = build({
        entryPoints: [join(WEB, entry)],
        bundle: true,
        format: 'esm',
        platform: 'browser',
        target: 'es2022',
        minify: true,
        // The dashboard carries vega and vega-lite: an inline source map would make its 0.8 MB script 6 MB.
        sourcemap: entry.startsWith('dashboard/') ? false : 'inline',
        write: false,
        logLevel: 'silent',
        // The platform-free core never reaches Node's modules; a stray import should fail the build, not load.
        external: [],
      }).then((r) => r.outputFiles[0]!.contents);
      this.bundles.set(entry, b);
      b.catch(() => this.bundles.delete(entry));
    }
    return b;
  }

  /** Builds every bundle now (so that the first page load does not wait, and a broken build shows at start). */
  async warm(): Promise<void> {
    await Promise.all(Object.values(BUNDLES).map((e) => this.bundle(e)));
  }

  private send(res: ServerResponse, type: string, body: Uint8Array | string, cache = 'no-cache'): void {
    res.writeHead(200, { 'content-type': type, 'cache-control': cache, ...ISOLATED });
    res.end(body);
  }

  /** Serves a page request; false when the path is not one of the pages'. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = (req.url ?? '/').split('?')[0]!;
    const page = PAGES[path];
    if (page) {
      this.send(res, TYPES['.html']!, readFileSync(join(WEB, page)));
      return true;
    }
    const entry = BUNDLES[path];
    if (entry) {
      this.bundle(entry).then(
        (body) => this.send(res, TYPES['.js']!, body),
        (e: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(`cannot build ${entry}: ${e.message}`);
        },
      );
      return true;
    }
    if (path.startsWith('/ort/')) {
      const name = path.slice('/ort/'.length);
      if (!ORT_FILE.test(name)) return false;
      const file = join(ORT_DIST, name);
      try {
        statSync(file);
      } catch {
        return false;
      }
      this.send(res, TYPES[name.endsWith('.wasm') ? '.wasm' : '.mjs']!, readFileSync(file), 'public, max-age=86400');
      return true;
    }
    return false;
  }
}
