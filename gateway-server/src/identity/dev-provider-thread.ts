// Starts the development identity provider on a worker thread instead of the gateway's own.
//
// Why: oidc-provider keeps its request context in an AsyncLocalStorage. On Node 20 the first
// request through it turns on promise hooks for the whole thread, for good, so every promise the
// gateway makes afterwards (several per SQL statement) pays for them. Measured with the point-
// SELECT benchmark at concurrency 8: 0.52 ms of gateway CPU per statement with the hooks on,
// 0.35 ms with them off. On its own thread the provider's hooks stay there.
import { Worker } from 'node:worker_threads';
import type { DevProviderOptions, RunningDevProvider } from './dev-provider';

type Reply =
  | { op: 'started'; issuer: string; port: number; audience: string; resourceIndicator: string }
  | { op: 'failed'; message: string }
  | { op: 'stopped' };

const STOP_GRACE_MS = 5_000;

export interface DevProviderThreadOptions {
  /** Called if the thread dies after it started (the gateway then answers token_provider_unavailable). */
  onExit?: (err: Error) => void;
}

export async function startDevProviderThread(
  opts: DevProviderOptions,
  hooks: DevProviderThreadOptions = {},
): Promise<RunningDevProvider> {
  // execArgv: the worker is plain JS and loads the provider's TypeScript itself.
  const worker = new Worker(new URL('./dev-provider-worker.mjs', import.meta.url), {
    execArgv: [],
    workerData: opts,
  });
  let stopping = false;
  const started = await new Promise<Extract<Reply, { op: 'started' }>>((resolve, reject) => {
    const onMessage = (r: Reply) => {
      if (r.op === 'started') resolve(r);
      else if (r.op === 'failed') reject(new Error(r.message));
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
    worker.once('exit', (code) =>
      reject(
        new Error(`the development identity provider's thread stopped while starting (exit code ${code})`),
      ),
    );
  }).catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });
  worker.removeAllListeners();
  worker.on('error', (err) => {
    if (!stopping) hooks.onExit?.(err);
  });
  worker.on('exit', (code) => {
    if (!stopping)
      hooks.onExit?.(new Error(`the development identity provider's thread stopped (exit code ${code})`));
  });

  return {
    issuer: started.issuer,
    port: started.port,
    audience: started.audience,
    resourceIndicator: started.resourceIndicator,
    threadId: worker.threadId,
    async stop() {
      if (stopping) return;
      stopping = true;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ op: 'stop' });
      const timer = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
