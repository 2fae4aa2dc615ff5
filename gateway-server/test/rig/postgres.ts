// Vitest helper: one real PostgreSQL per describe block / file.

import type { AccessLevel } from '@sallyport/protocol';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { GatewayConfigInput } from '../../src/config/schema';
import { type RunningPostgres, type StartPostgresOptions, startPostgres } from '../../src/devstack/postgres';
import { createMasker } from '../../src/masking';
import { SqlSession, type SqlSessionOptions } from '../../src/protocols/postgres/session';

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

type PostgresTargetInput = Extract<NonNullable<GatewayConfigInput['targets']>[number], { kind: 'postgres' }>;

/**
 * The server's database as a gateway target: id `demo`, kind postgres, its superuser's password
 * as the stored credential. `extra` overrides (labels, id, tls, …).
 */
export function postgresTarget(
  server: RunningPostgres,
  extra: Partial<PostgresTargetInput> = {},
): PostgresTargetInput {
  return {
    id: 'demo',
    kind: 'postgres',
    host: server.host,
    port: server.port,
    user: server.user,
    database: server.database,
    credential: { password: server.password },
    ...extra,
  };
}

/** A pg.Client on `server` as its superuser, connected (set-up and checks behind the gateway's back). */
export async function adminClient(server: RunningPostgres, database = server.database): Promise<pg.Client> {
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    database,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/**
 * A SqlSession straight on `server` (no gateway, no WebSocket), with the test defaults: target
 * `demo`, user alice, a fixed-key masker. For tests of the session itself (memory, read-only
 * enforcement without rules, the statement protocol).
 */
export function openSqlSession(
  server: RunningPostgres,
  o: Pick<SqlSessionOptions, 'ledger' | 'send'> &
    Partial<Pick<SqlSessionOptions, 'rules' | 'maxRows'>> & { grantId: string; level?: AccessLevel },
): Promise<SqlSession> {
  return SqlSession.open({
    target: {
      id: 'demo',
      host: server.host,
      port: server.port,
      user: server.user,
      database: server.database,
      tls: 'disable',
    },
    password: server.password,
    grant: { id: o.grantId, level: o.level ?? 'read' },
    actor: { username: 'alice', kind: 'user' },
    masker: createMasker({}, Buffer.alloc(32, 1)),
    ledger: o.ledger,
    send: o.send,
    ...(o.rules ? { rules: o.rules } : {}),
    ...(o.maxRows !== undefined ? { maxRows: o.maxRows } : {}),
  });
}
