import { Worker } from 'node:worker_threads';

/**
 * Makes PGlite look like the part of a `pg.Pool` that Kysely's PostgresDialect
 * uses, so the same dialect, query compiler and migrations serve both stores.
 * Written by hand because kysely-pglite-dialect pins PGlite ≤ 0.4.
 *
 * PGlite runs on a worker thread (pglite-worker.mjs): it executes synchronously
 * on the thread that calls it, and on the gateway's main thread each ledger write
 * held up every live session's traffic for milliseconds. PGlite is one
 * connection: `connect()` hands it out to one holder at a time, which keeps
 * transactions from interleaving.
 */
export interface PGlitePool {
  connect(): Promise<PGliteClient>;
  end(): Promise<void>;
}

interface PGliteClient {
  query(
    sql: string,
    params: readonly unknown[],
  ): Promise<{ command?: string; rowCount: number; rows: unknown[] }>;
  release(): void;
}

type Result = { command?: string; rowCount: number; rows: unknown[] };
type WorkerError = { message: string; name: string; [field: string]: string | number };
type Reply =
  | { op: 'ready' }
  | { op: 'failed'; error: WorkerError }
  | { op: 'result'; id: number; error?: WorkerError; command?: string; rowCount: number; rows: unknown[] }
  | { op: 'closed' };

/** The worker's error as an Error again, with PostgreSQL's fields (code, detail, …) on it. */
function revive(e: WorkerError): Error {
  const err = new Error(e.message);
  for (const [k, v] of Object.entries(e))
    if (k !== 'message' && k !== 'stack') Object.assign(err, { [k]: v });
  return err;
}

export async function createPGlitePool(dataDir: string | undefined): Promise<PGlitePool> {
  // No TypeScript loader needed (or wanted: it would slow the start): the worker is plain JS.
  const worker = new Worker(new URL('./pglite-worker.mjs', import.meta.url), { execArgv: [] });
  const pending = new Map<number, { resolve(r: Result): void; reject(err: Error): void }>();
  let nextId = 1;
  let dead: Error | undefined;
  let onOpen: ((r: Reply) => void) | undefined;
  let onClosed: (() => void) | undefined;

  // The worker keeps the process alive only while it owes an answer.
  const busy = () => {
    if (pending.size === 1) worker.ref();
  };
  const idle = () => {
    if (pending.size === 0) worker.unref();
  };
  const fail = (err: Error) => {
    dead ??= err;
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
    onOpen?.({ op: 'failed', error: { message: dead.message, name: 'Error' } });
    onClosed?.();
  };
  worker.on('message', (r: Reply) => {
    if (r.op === 'ready' || r.op === 'failed') return onOpen?.(r);
    if (r.op === 'closed') return onClosed?.();
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    idle();
    if (r.error) p.reject(revive(r.error));
    else
      p.resolve({
        ...(r.command !== undefined ? { command: r.command } : {}),
        rowCount: r.rowCount,
        rows: r.rows,
      });
  });
  worker.on('error', (err) => fail(new Error(`the store's worker failed: ${err.message}`)));
  worker.on('exit', (code) => fail(new Error(`the store's worker stopped (exit code ${code})`)));

  const opened = await new Promise<Reply>((resolve) => {
    onOpen = resolve;
    worker.postMessage({ op: 'open', dataDir });
  });
  onOpen = undefined;
  if (opened.op === 'failed') {
    await worker.terminate().catch(() => {});
    throw revive(opened.error);
  }
  worker.unref();

  const run = (sql: string, params: readonly unknown[]): Promise<Result> => {
    if (dead) return Promise.reject(dead);
    return new Promise<Result>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      busy();
      worker.postMessage({ op: 'query', id, sql, params: [...params] });
    });
  };

  let tail: Promise<void> = Promise.resolve();
  let ended = false;
  return {
    async connect() {
      if (ended) throw new Error('store is closed');
      let release!: () => void;
      const mine = new Promise<void>((r) => {
        release = r;
      });
      const before = tail;
      tail = before.then(() => mine);
      await before;
      let released = false;
      return {
        query: run,
        release() {
          if (!released) {
            released = true;
            release();
          }
        },
      };
    },
    async end() {
      if (ended) return;
      ended = true;
      await tail;
      if (!dead) {
        worker.ref();
        await new Promise<void>((resolve) => {
          onClosed = resolve;
          worker.postMessage({ op: 'close' });
        });
      }
      await worker.terminate().catch(() => {});
    },
  };
}
