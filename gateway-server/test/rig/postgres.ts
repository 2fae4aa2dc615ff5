// Vitest helper: one real PostgreSQL per describe block / file.
import { afterAll, beforeAll } from 'vitest';
import { type RunningPostgres, type StartPostgresOptions, startPostgres } from '../../src/devstack/postgres';

export interface PostgresFixture {
  /** The running server; throws when read outside the beforeAll/afterAll window. */
  readonly server: RunningPostgres;
  /** `postgres://user:password@host:port/database` (password URL-encoded). */
  url(database?: string): string;
}

/** Starts PostgreSQL in beforeAll (seeded demo data by default) and stops it in afterAll. */
export function usePostgres(opts: StartPostgresOptions = { seedDemo: true }): PostgresFixture {
  let server: RunningPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres(opts);
  });
  afterAll(async () => {
    await server?.stop();
    server = undefined;
  });
  const fixture: PostgresFixture = {
    get server() {
      if (!server) throw new Error('usePostgres: server not running (use it inside tests or hooks)');
      return server;
    },
    url(database) {
      const s = fixture.server;
      return `postgres://${encodeURIComponent(s.user)}:${encodeURIComponent(s.password)}@${s.host}:${s.port}/${encodeURIComponent(database ?? s.database)}`;
    },
  };
  return fixture;
}
