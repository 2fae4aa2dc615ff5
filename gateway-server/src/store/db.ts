import { mkdirSync } from 'node:fs';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from './migrations';
import { createPGlitePool } from './pglite-pool';
import type { Database } from './tables';

export interface Store {
  db: Kysely<Database>;
  kind: 'pglite' | 'postgres';
  /** Fails (throws) when the store cannot answer: used by /readyz and by fail-closed checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type StoreOptions = { url: string } | { dataDir: string } | { memory: true };

/** Opens the store and brings its schema up to date. */
export async function openStore(opts: StoreOptions): Promise<Store> {
  let dialect: PostgresDialect;
  let kind: Store['kind'];
  if ('url' in opts) {
    const types = {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === 20
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    };
    const pool = new pg.Pool({ connectionString: opts.url, max: 10, types, connectionTimeoutMillis: 10_000 });
    // An idle client losing its server must not crash the process; the next query reports it.
    pool.on('error', () => {});
    dialect = new PostgresDialect({ pool });
    kind = 'postgres';
  } else {
    const dir = 'dataDir' in opts ? opts.dataDir : undefined;
    if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pool = await createPGlitePool(dir);
    // The PGlite pool implements the subset of pg.Pool that PostgresDialect calls.
    dialect = new PostgresDialect({ pool: pool as unknown as pg.Pool });
    kind = 'pglite';
  }
  const db = new Kysely<Database>({ dialect });
  try {
    await migrateToLatest(db as Kysely<unknown>);
  } catch (err) {
    await db.destroy().catch(() => {});
    throw err;
  }
  return {
    db,
    kind,
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}
