// PostgreSQL LISTEN on a connection of its own, for news between gateway instances that share a
// store (a revocation decided on one must reach the sessions held by the others). pg.Pool cannot
// do this: LISTEN belongs to one connection, and a pooled one goes back to the pool.
import pg from 'pg';

export interface Listener {
  stop(): Promise<void>;
}

export interface ListenOptions {
  url: string;
  /** A plain identifier: it is put into `LISTEN` as is. */
  channel: string;
  onMessage(payload: string): void;
  /**
   * The connection is (re)established: notifications sent while it was down are lost, so the
   * caller catches up from the store. Called after the first connect too.
   */
  onConnected?(): void;
  log?: { warn(o: object, m: string): void };
  /** Delay before reconnecting, by attempt (1-based). Default: 0.5 s doubling to 30 s. */
  retryDelayMs?: (attempt: number) => number;
}

/** Listens until stopped, reconnecting after a lost connection. Resolves once the first LISTEN is in place. */
export async function listen(opts: ListenOptions): Promise<Listener> {
  if (!/^[a-z_][a-z0-9_]*$/.test(opts.channel)) throw new Error(`not a plain channel name: ${opts.channel}`);
  const retryDelay = opts.retryDelayMs ?? ((n: number) => Math.min(30_000, 500 * 2 ** (n - 1)));
  let client: pg.Client | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let attempts = 0;
  /** The latest connect, which stop() waits for (a connection it opens after stop is closed). */
  let connecting: Promise<void> | undefined;

  const connectOnce = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: opts.url, connectionTimeoutMillis: 10_000, keepAlive: true });
    c.on('notification', (n) => {
      if (n.channel !== opts.channel || n.payload === undefined) return;
      try {
        opts.onMessage(n.payload);
      } catch (err) {
        // Anyone who can connect can NOTIFY: a bad payload must not take the gateway down.
        opts.log?.warn(
          { err: (err as Error).message, channel: opts.channel },
          'a notification was not handled',
        );
      }
    });
    c.on('error', (err) => {
      opts.log?.warn({ err: err.message, channel: opts.channel }, 'LISTEN connection lost; reconnecting');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${opts.channel}`);
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
    if (stopped) {
      await c.end().catch(() => {});
      return;
    }
    c.on('end', () => {
      if (client === c) client = undefined;
      if (!stopped) schedule();
    });
    client = c;
    attempts = 0;
    opts.onConnected?.();
  };
  const connect = (): Promise<void> => {
    connecting = connectOnce();
    return connecting;
  };
  const schedule = (): void => {
    if (stopped || timer) return;
    attempts++;
    timer = setTimeout(() => {
      timer = undefined;
      connect().catch((err: Error) => {
        opts.log?.warn(
          { err: err.message, channel: opts.channel, attempts },
          'LISTEN connection failed; retrying',
        );
        schedule();
      });
    }, retryDelay(attempts));
    timer.unref?.();
  };

  await connect();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await connecting?.catch(() => {});
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
