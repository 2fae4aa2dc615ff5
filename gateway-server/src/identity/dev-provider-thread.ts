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
const START_TIMEOUT_MS = 60_000;

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
  let exited = false;
  const exit = new Promise<number>((resolve) =>
    worker.once('exit', (code) => {
      exited = true;
      resolve(code);
    }),
  );
  let startTimer: NodeJS.Timeout | undefined;
  const started = await new Promise<Extract<Reply, { op: 'started' }>>((resolve, reject) => {
    startTimer = setTimeout(
      () =>
        reject(
          new Error(`the development identity provider did not start within ${START_TIMEOUT_MS / 1000} s`),
        ),
      START_TIMEOUT_MS,
    );
    worker.on('message', (r: Reply) => {
      if (r.op === 'started') resolve(r);
      else if (r.op === 'failed') reject(new Error(r.message));
    });
    worker.once('error', reject);
    void exit.then((code) =>
      reject(
        new Error(`the development identity provider's thread stopped while starting (exit code ${code})`),
      ),
    );
  })
    .catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    })
    .finally(() => {
      clearTimeout(startTimer);
      worker.removeAllListeners('message').removeAllListeners('error');
    });
  // A crash fires `error` and then `exit`: the owner hears of it once.
  let crash: Error | undefined;
  worker.on('error', (err) => {
    crash ??= err;
  });
  void exit.then((code) => {
    if (!stopping)
      hooks.onExit?.(
        crash ?? new Error(`the development identity provider's thread stopped (exit code ${code})`),
      );
  });

  return {
    issuer: started.issuer,
    port: started.port,
    audience: started.audience,
    resourceIndicator: started.resourceIndicator,
    threadId: worker.threadId,
    async stop() {
      if (stopping || exited) {
        stopping = true;
        await exit;
        return;
      }
      stopping = true;
      worker.postMessage({ op: 'stop' });
      const timer = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
      await exit;
      clearTimeout(timer);
    },
  };
}
