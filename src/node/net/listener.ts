// The server's HTTP(S) socket, bound before anything else happens (a port in use is refused before any data
// loads). Requests that arrive before the federation is ready get 503; WebSocket upgrades are refused until then.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { UserError } from '../../core/errors.ts';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

export class Listener {
  private handler: HttpHandler = (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '2' });
    res.end(JSON.stringify({ state: 'starting' }));
  };

  private constructor(
    readonly http: Server,
    readonly host: string,
    readonly port: number,
    readonly tls: boolean,
  ) {}

  /** Binds host:port (0 = any free port); a port in use or not permitted is a UserError naming it. */
  static async open(host: string, port: number, tls: { cert: Buffer; key: Buffer; files?: { cert: string; key: string } } | null): Promise<Listener> {
    let self: Listener | null = null;
    const handler: HttpHandler = (req, res) => self?.handler(req, res);
    let http: Server;
    try {
      http = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createHttpServer(handler);
    } catch (e) {
      const files = tls?.files ? `--tls-cert ${tls.files.cert} / --tls-key ${tls.files.key}` : '--tls-cert/--tls-key';
      throw new UserError(`${files}: not a usable PEM certificate and private key (${(e as Error).message.split('\n')[0]})`, {
        hint: 'give the certificate and its private key as PEM files (-----BEGIN CERTIFICATE----- / -----BEGIN PRIVATE KEY-----)',
      });
    }
    // Upgrades before the federation attaches its WebSocket server are refused (the client retries).
    http.on('upgrade', (_req, socket) => {
      if (http.listenerCount('upgrade') === 1) socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', (e: NodeJS.ErrnoException) => {
        const where = `${host}:${port}`;
        if (e.code === 'EADDRINUSE') reject(new UserError(`port ${port} on ${host} is in use by another process`, { hint: 'choose another with --port P (0 = any free port)' }));
        else if (e.code === 'EACCES') reject(new UserError(`not permitted to listen on ${where} (ports below 1024 need privileges)`, { hint: 'choose a port ≥ 1024 with --port P' }));
        else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') reject(new UserError(`cannot listen on ${where}: no such local address`, { hint: "use --host 127.0.0.1, or '0.0.0.0' for all interfaces" }));
        else reject(new UserError(`cannot listen on ${where} (${e.code ?? e.message})`));
      });
      http.listen(port, host, () => resolve());
    });
    self = new Listener(http, host, (http.address() as AddressInfo).port, tls !== null);
    return self;
  }

  /** Hands every later HTTP request to `handler`. */
  serve(handler: HttpHandler): void {
    this.handler = handler;
  }

  get url(): string {
    return `${this.tls ? 'wss' : 'ws'}://${this.bracketed}:${this.port}/`;
  }

  get statusUrl(): string {
    return `${this.tls ? 'https' : 'http'}://${this.bracketed}:${this.port}/status`;
  }

  private get bracketed(): string {
    return this.host.includes(':') ? `[${this.host}]` : this.host;
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }
}
