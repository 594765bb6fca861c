// A pool of worker_threads, one task at a time per worker, first free worker takes the next task.
// Workers are TypeScript modules; each registers tsx itself, so the pool works under `node --import tsx`
// and from the `baffle` bin alike.
import { Worker, type Transferable } from 'node:worker_threads';

interface Pending {
  task: unknown;
  /** A worker this task must run on (broadcast), or null for any. */
  target: Worker | null;
  transfer: Transferable[];
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

const TSX_API = import.meta.resolve('tsx/esm/api');

function spawn(moduleUrl: URL, workerData: unknown): Worker {
  const bootstrap =
    `import { register } from ${JSON.stringify(TSX_API)}; register();` +
    `await import(${JSON.stringify(moduleUrl.href)});`;
  return new Worker(bootstrap, { eval: true, workerData });
}

export class WorkerPool<Task, Result> {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Pending[] = [];
  private readonly inFlight = new Map<Worker, { id: number; pending: Pending }>();
  private nextId = 0;
  private closed = false;
  private failure: Error | null = null;

  /** Starts `size` workers running `moduleUrl` (which must call `serveTasks`). */
  constructor(moduleUrl: URL, size: number, workerData: unknown) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`workers must be a positive integer, got ${size}`);
    for (let i = 0; i < size; i++) {
      const worker = spawn(moduleUrl, { ...(workerData as object), workerIndex: i });
      worker.on('message', (reply: Reply) => this.onReply(worker, reply));
      worker.on('error', (err) => this.fail(err instanceof Error ? err : new Error(String(err))));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`worker ${i} exited unexpectedly with code ${code}`));
      });
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  run(task: Task, transfer: Transferable[] = []): Promise<Result> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('worker pool is closed'));
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({ task, target: null, transfer, resolve: resolve as (v: unknown) => void, reject });
      this.dispatch();
    });
  }

  /** Runs the same task once on every worker (set-up, state changes). */
  broadcast(task: Task): Promise<Result[]> {
    if (this.failure) return Promise.reject(this.failure);
    return Promise.all(
      this.workers.map(
        (target) =>
          new Promise<Result>((resolve, reject) => {
            this.queue.unshift({ task, target, transfer: [], resolve: resolve as (v: unknown) => void, reject });
            this.dispatch();
          }),
      ),
    );
  }

  private dispatch(): void {
    for (let i = 0; i < this.queue.length && this.idle.length > 0; ) {
      const pending = this.queue[i];
      const worker = pending.target ?? this.idle[0];
      const idleIndex = this.idle.indexOf(worker);
      if (idleIndex < 0) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.idle.splice(idleIndex, 1);
      const id = this.nextId++;
      this.inFlight.set(worker, { id, pending });
      worker.postMessage({ id, task: pending.task }, pending.transfer);
    }
  }

  private onReply(worker: Worker, reply: Reply): void {
    const entry = this.inFlight.get(worker);
    if (!entry || entry.id !== reply.id) return;
    this.inFlight.delete(worker);
    this.idle.push(worker);
    if (reply.ok) entry.pending.resolve(reply.result);
    else entry.pending.reject(new Error(reply.error ?? 'worker task failed'));
    this.dispatch();
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const { pending } of this.inFlight.values()) pending.reject(error);
    for (const pending of this.queue) pending.reject(error);
    this.inFlight.clear();
    this.queue.length = 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
