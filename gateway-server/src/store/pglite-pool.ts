import { PGlite } from '@electric-sql/pglite';

/**
 * Makes PGlite look like the part of a `pg.Pool` that Kysely's PostgresDialect
 * uses, so the same dialect, query compiler and migrations serve both stores.
 * Written by hand because kysely-pglite-dialect pins PGlite ≤ 0.4.
 *
 * PGlite is one in-process connection: `connect()` hands it out to one holder
 * at a time, which keeps transactions from interleaving.
 */
export interface PGlitePool {
  connect(): Promise<PGliteClient>;
  end(): Promise<void>;
  readonly pglite: PGlite;
}

interface PGliteClient {
  query(
    sql: string,
    params: readonly unknown[],
  ): Promise<{ command?: string; rowCount: number; rows: unknown[] }>;
  release(): void;
}

export async function createPGlitePool(dataDir: string | undefined): Promise<PGlitePool> {
  // int8 as JS number, like the pg pool is configured: counts and sequences stay well below 2^53.
  const pglite = new PGlite(dataDir, { parsers: { 20: (v: string) => Number(v) } });
  await pglite.waitReady;
  let tail: Promise<void> = Promise.resolve();
  let ended = false;

  return {
    pglite,
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
        async query(sql, params) {
          const r = await pglite.query(sql, [...params]);
          const result = r as typeof r & { command?: string; rowCount?: number };
          return {
            command: result.command,
            rowCount: result.rowCount ?? result.affectedRows ?? 0,
            rows: r.rows,
          };
        },
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
      await pglite.close();
    },
  };
}
