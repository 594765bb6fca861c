// The worker side of WorkerPool: answer each task message with its result or the error's message.
import { parentPort, type Transferable } from 'node:worker_threads';

export function serveTasks<Task>(
  handle: (task: Task) => Promise<{ result: unknown; transfer?: Transferable[] }>,
): void {
  const port = parentPort;
  if (!port) throw new Error('serveTasks must run inside a worker thread');
  // Tasks run one at a time, in arrival order.
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (message: { id: number; task: Task }) => {
    chain = chain.then(async () => {
      try {
        const { result, transfer } = await handle(message.task);
        port.postMessage({ id: message.id, ok: true, result }, transfer ?? []);
      } catch (err) {
        const error = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
        port.postMessage({ id: message.id, ok: false, error });
      }
    });
  });
}
