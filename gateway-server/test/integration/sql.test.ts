// SQL sessions through the gateway against a real PostgreSQL: guardrails before anything runs,
// masking of every cell, read-only enforced by the database, cursor streaming with a row cap,
// cancel, revocation/expiry and connection loss.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { GatewayClient, SqlServerMessage } from '@sallyport/protocol';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { main } from '../../src/cli/main';
import type { Io } from '../../src/cli/output';
import { demoCustomers, type RunningPostgres, startPostgres } from '../../src/devstack';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { adminClient, openSqlSession, postgresTarget } from '../rig/postgres';
import { recordTranscript, registerSecret } from '../rig/transcript';

let pgServer: RunningPostgres;
let t: TestGateway;
let token: string;
let api: GatewayClient;
let admin: pg.Client;
let home: string;
const sockets: SqlSocket[] = [];
const REASON = 'checking the customers table for ticket OPS-77';
const customers = demoCustomers();
const rawEmails = customers.map((c) => c.email);
const rawCards = customers.map((c) => c.cardNumber);

type Frame = SqlServerMessage;
const TERMINAL = new Set(['complete', 'error', 'blocked', 'review', 'cancelled']);

interface SqlSocket {
  frames: Frame[];
  ready: Extract<Frame, { type: 'ready' }>;
  run(sql: string, opts?: { maxRows?: number; id?: string }): Promise<Frame[]>;
  start(sql: string, id: string): void;
  send(frame: unknown): void;
  waitFor(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

let runSeq = 0;

/** A full garbage collection, for memory measurements (no --expose-gc needed). */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function openSql(grantId: string, targetId = 'demo'): Promise<SqlSocket> {
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/sql`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  ws.on('message', (d) => {
    recordTranscript('sql-ws', String(d));
    frames.push(JSON.parse(String(d)) as Frame);
    for (const w of [...waiters]) w();
  });
  const waitFor = (pred: (f: Frame) => boolean, timeoutMs = 20_000) =>
    new Promise<Frame>((resolve, reject) => {
      const hit = frames.find(pred);
      if (hit) return resolve(hit);
      const check = () => {
        const h = frames.find(pred);
        if (h) {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(h);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(`frame not seen within ${timeoutMs} ms; got ${frames.map((f) => f.type).join(',')}`),
        );
      }, timeoutMs);
      waiters.add(check);
    });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'open', targetId, grantId }));
  const first = await waitFor((f) => f.type === 'ready' || f.type === 'error');
  if (first.type !== 'ready')
    throw Object.assign(new Error(`open refused: ${JSON.stringify(first)}`), { frame: first });
  const send = (frame: unknown) => ws.send(JSON.stringify(frame));
  const socket: SqlSocket = {
    frames,
    ready: first,
    send,
    waitFor,
    closed,
    start(sql, id) {
      send({ type: 'run', id, sql });
    },
    async run(sql, opts = {}) {
      const id = opts.id ?? `r${++runSeq}`;
      send({ type: 'run', id, sql, ...(opts.maxRows ? { maxRows: opts.maxRows } : {}) });
      await waitFor((f) => TERMINAL.has(f.type) && 'id' in f && f.id === id);
      return frames.filter((f) => 'id' in f && f.id === id);
    },
    close: () => ws.close(),
  };
  sockets.push(socket);
  return socket;
}

async function grant(level: 'read' | 'write', duration: string | number = '1h'): Promise<string> {
  const out = await api.requestAccess({ targetId: 'demo', level, duration, reason: REASON });
  if (out.outcome !== 'granted') throw new Error('expected an automatic grant');
  return out.grant.id;
}

const of = <T extends Frame['type']>(frames: Frame[], type: T) =>
  frames.filter((f): f is Extract<Frame, { type: T }> => f.type === type);
const rowsOf = (frames: Frame[]) => of(frames, 'rows').flatMap((f) => f.rows);
const count = async () => Number((await admin.query('select count(*)::int as n from customers')).rows[0].n);
/** The revoker writes its receipt after the sessions have closed: wait for it. */
const receipt = async (grantId: string) => {
  for (let i = 0; i < 100; i++) {
    const hit = (await t.gw.ledger.list({ kind: 'revocation.completed', limit: 10_000 })).find(
      (e) => e.data.grantId === grantId,
    );
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
};
const sessionEnded = async (sessionId: string) => {
  for (let i = 0; i < 100; i++) {
    const hit = (await t.gw.ledger.list({ kind: 'sql.session.ended', limit: 10_000 })).find(
      (e) => e.data.sessionId === sessionId,
    );
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
};
const noRawValues = (frames: Frame[]) => {
  const text = JSON.stringify(frames);
  for (const e of rawEmails) expect(text).not.toContain(e);
  for (const c of rawCards) expect(text).not.toContain(c);
};

beforeAll(async () => {
  pgServer = await startPostgres({ seedDemo: true });
  registerSecret(pgServer.password);
  home = mkdtempSync(path.join(tmpdir(), 'sallyport-sql-cli-'));
  t = await startTestGateway({
    config: {
      targets: [postgresTarget(pgServer, { labels: { env: 'sql-test' } })],
      access: {
        rules: [
          {
            name: 'sql-auto',
            requesters: { groups: ['developers'] },
            targets: { ids: ['demo'] },
            levels: ['read', 'write'],
            maxDuration: '8h',
            approval: 'auto',
          },
        ],
      },
    },
  });
  token = await t.token('alice');
  api = t.client(token);
  admin = await adminClient(pgServer);
  // Says `msg` n times with RAISE NOTICE, then once as a WARNING with a hint (the notices tests).
  await admin.query(`create or replace function noisy(n int, msg text) returns int language plpgsql as $$
    begin
      for i in 1..n loop raise notice '% %', msg, i; end loop;
      raise warning 'last of %', n using hint = 'hint for ' || msg;
      return n;
    end $$`);
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await admin?.end().catch(() => {});
  await t?.stop();
  await pgServer?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('results', () => {
  it('streams a SELECT with column types and table names', async () => {
    const s = await openSql(await grant('write'));
    expect(s.ready).toMatchObject({ level: 'write', readOnly: false, maxRows: 10_000 });
    const frames = await s.run(
      'select id, name, country, created_at, 1.5::numeric as n from customers order by id',
    );
    const [cols] = of(frames, 'columns');
    expect(cols?.columns).toEqual([
      { name: 'id', type: 'int4', table: 'customers', schema: 'public' },
      { name: 'name', type: 'text', table: 'customers', schema: 'public' },
      { name: 'country', type: 'bpchar', table: 'customers', schema: 'public' },
      { name: 'created_at', type: 'timestamptz', table: 'customers', schema: 'public' },
      { name: 'n', type: 'numeric' },
    ]);
    const rows = rowsOf(frames);
    expect(rows).toHaveLength(50);
    expect(rows[0]?.slice(0, 2)).toEqual(['1', customers[0]!.name]);
    expect(rows[0]?.[4]).toBe('1.5');
    expect(of(frames, 'done')).toEqual([
      expect.objectContaining({ statementIndex: 0, command: 'SELECT', rowCount: 50, truncated: false }),
    ]);
    expect(frames.at(-1)).toMatchObject({ type: 'complete', statements: 1 });
    // Statement events are written behind the statement (group commit): wait for it.
    const sessionId = s.ready.sessionId;
    let logged: Awaited<ReturnType<typeof t.gw.ledger.list>>[number] | undefined;
    await expect
      .poll(async () => {
        const events = await t.gw.ledger.list({ kind: 'sql.statements', limit: 10_000 });
        logged = events.find((e) => e.data.sessionId === sessionId);
        return logged;
      })
      .toBeDefined();
    const listed = logged?.data.statements as Record<string, unknown>[];
    expect(listed).toEqual([
      expect.objectContaining({ verdict: 'allow', outcome: 'ok', rowCount: 50, kind: 'SelectStmt' }),
    ]);
    expect(typeof listed[0]?.durationMs).toBe('number');
    expect(JSON.stringify(logged)).not.toContain(customers[0]!.name);
  });

  it('masks every e-mail and card number and reports the masked cells', async () => {
    const s = await openSql(await grant('read'));
    const frames = await s.run('select email, card_number, country from customers order by id');
    const rows = rowsOf(frames);
    expect(rows).toHaveLength(50);
    const masked = of(frames, 'rows').flatMap((f) => f.masked);
    expect(masked).toHaveLength(100);
    expect(new Set(masked.map(([, c]) => c))).toEqual(new Set([0, 1]));
    rows.forEach((row, i) => {
      expect(row[0]).not.toBe(rawEmails[i]);
      expect(row[0]).toMatch(/^•+/);
      expect(row[1]).not.toBe(rawCards[i]);
      expect(row[1]?.endsWith(rawCards[i]!.slice(-4))).toBe(true);
      expect(row[2]).toBe(customers[i]!.country);
    });
    noRawValues(frames);
  });

  it('masks derived values through the detectors', async () => {
    const s = await openSql(await grant('read'));
    for (const sql of [
      'select upper(email) from customers',
      "select email || '' from customers",
      'select row_to_json(c) from customers c',
      'select json_agg(email) from customers',
      "select string_agg(card_number, ' ') from customers",
    ]) {
      const frames = await s.run(sql);
      expect(frames.at(-1)?.type, sql).toBe('complete');
      const rows = rowsOf(frames);
      expect(rows.length, sql).toBeGreaterThan(0);
      expect(of(frames, 'rows').flatMap((f) => f.masked).length, sql).toBe(rows.length);
      const text = JSON.stringify(frames);
      for (const e of rawEmails) expect(text.toLowerCase(), sql).not.toContain(e);
      for (const c of rawCards) expect(text, sql).not.toContain(c);
    }
    noRawValues(s.frames);
  });

  it('keeps result values out of the ledger and the logs', async () => {
    const ledger = JSON.stringify(await t.gw.ledger.list({ limit: 100_000 }));
    const logs = JSON.stringify(t.logs);
    for (const e of rawEmails) {
      expect(ledger).not.toContain(e);
      expect(logs).not.toContain(e);
    }
    for (const c of rawCards) {
      expect(ledger).not.toContain(c);
      expect(logs).not.toContain(c);
    }
    expect(logs).not.toContain(pgServer.password);
  });
});

describe('notices', () => {
  it("relays PostgreSQL's notices with their statement, masked, before the statement's end", async () => {
    const s = await openSql(await grant('read'));
    const mail = rawEmails[0]!;
    const frames = await s.run(`select 1; select noisy(2, '${mail}')`);
    const notices = of(frames, 'notice');
    expect(notices.map((n) => [n.statementIndex, n.severity, n.code])).toEqual([
      [1, 'NOTICE', '00000'],
      [1, 'NOTICE', '00000'],
      [1, 'WARNING', '01000'],
    ]);
    expect(notices[0]?.message).toMatch(/ 1$/);
    expect(notices[2]?.message).toBe('last of 2');
    // The address in the message and in the hint is masked like any error text.
    for (const n of notices) expect(JSON.stringify(n)).not.toContain(mail);
    expect(notices[0]?.message).toMatch(/•/);
    expect(notices[2]?.hint).toMatch(/^hint for .*•/);
    const doneAt = frames.findIndex((f) => f.type === 'done' && f.statementIndex === 1);
    expect(frames.indexOf(notices[2]!)).toBeLessThan(doneAt);
    expect(frames.at(-1)).toMatchObject({ type: 'complete' });
    noRawValues(frames);
  });

  it('sends at most 100 notices per statement and 500 per run, clipped to 4 KiB each', async () => {
    const s = await openSql(await grant('read'));
    const frames = await s.run("select noisy(150, 'n')");
    const notices = of(frames, 'notice');
    expect(notices).toHaveLength(101);
    expect(notices[99]?.message).toBe('n 100');
    expect(notices[100]?.message).toBe('more than 100 notices in this statement: the rest are not shown');
    expect(frames.at(-1)).toMatchObject({ type: 'complete' });

    // 6 statements of 91 notices each: 500 in the run, then one saying the rest are not shown.
    const many = await s.run(Array.from({ length: 6 }, () => "select noisy(90, 'r')").join('; '));
    const manyNotices = of(many, 'notice');
    expect(manyNotices).toHaveLength(501);
    expect(manyNotices[500]).toMatchObject({
      statementIndex: 5,
      message: 'more than 500 notices in this run: the rest are not shown',
    });
    expect(many.at(-1)).toMatchObject({ type: 'complete', statements: 6 });

    // One statement past both limits: told once, at the first; the next statement, that the run's
    // limit is reached; the one after, nothing more.
    const flood = of(
      await s.run("select noisy(600, 'f'); select noisy(5, 'g'); select noisy(5, 'h')"),
      'notice',
    );
    expect(flood.map((n) => [n.statementIndex, n.message]).slice(99)).toEqual([
      [0, 'f 100'],
      [0, 'more than 100 notices in this statement: the rest are not shown'],
      [1, 'more than 500 notices in this run: the rest are not shown'],
    ]);

    // A long text is clipped before it is masked and sent.
    const long = of(await s.run("select noisy(1, repeat('x', 20000))"), 'notice');
    expect(long[0]?.message).toHaveLength(4097);
    expect(long[0]?.message.endsWith('x…')).toBe(true);
    expect(long[1]?.hint).toHaveLength(4097);
  });
});

describe('the channel', () => {
  it('authenticates by first frame, names malformed frames, and refuses without a grant', async () => {
    const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/sql`);
    const queue: Frame[] = [];
    let wake: (() => void) | undefined;
    ws.on('message', (d) => {
      recordTranscript('sql-ws', String(d));
      queue.push(JSON.parse(String(d)) as Frame);
      wake?.();
    });
    const closedCode = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    const next = async (): Promise<Frame> => {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      return queue.shift()!;
    };
    await new Promise((r) => ws.once('open', r));
    ws.send('not json');
    expect(await next()).toMatchObject({
      type: 'error',
      code: 'bad_frame',
      message: 'frame is not valid JSON',
    });
    ws.send(JSON.stringify({ type: 'open', targetId: 'demo' }));
    expect(await next()).toMatchObject({
      type: 'error',
      code: 'bad_frame',
      message: expect.stringContaining('grantId'),
    });
    ws.send(JSON.stringify({ type: 'run', id: 'q1', sql: 'select 1' }));
    expect(await next()).toMatchObject({ type: 'error', code: 'unauthenticated' });
    ws.send(JSON.stringify({ type: 'auth', token }));
    ws.send(JSON.stringify({ type: 'run', id: 'q3' }));
    expect(await next()).toMatchObject({
      type: 'error',
      code: 'bad_frame',
      id: 'q3',
      message: expect.stringContaining('sql'),
    });
    ws.send(
      JSON.stringify({ type: 'open', targetId: 'demo', grantId: '00000000-0000-4000-8000-000000000000' }),
    );
    expect(await next()).toMatchObject({ type: 'error', code: 'no_grant' });
    expect(await closedCode).toBe(4403);
    // A fifth malformed frame would have ended the channel (too_many_bad_frames).
  });

  it('runs one batch at a time', async () => {
    const s = await openSql(await grant('read'));
    s.start('select pg_sleep(0.5)', 'first');
    const busy = await s.run('select 1', { id: 'second' });
    expect(busy).toEqual([expect.objectContaining({ type: 'error', code: 'busy' })]);
    await s.waitFor((f) => f.type === 'complete' && f.id === 'first');
  });
});

describe('write level', () => {
  it('runs a batch of several statements as one transaction, and honours BEGIN … COMMIT across runs', async () => {
    const s = await openSql(await grant('write'));
    expect(
      (await s.run('create table if not exists sql_test_notes (id int primary key, note text)')).at(-1)?.type,
    ).toBe('complete');
    const failed = await s.run("insert into sql_test_notes values (1, 'a'); select 1/0");
    expect(of(failed, 'done')).toEqual([expect.objectContaining({ command: 'INSERT', rowCount: 1 })]);
    expect(failed.at(-1)).toMatchObject({ type: 'error', code: '22012', statementIndex: 1 });
    expect(rowsOf(await s.run('select count(*) from sql_test_notes'))).toEqual([['0']]);

    expect((await s.run('begin')).at(-1)?.type).toBe('complete');
    await s.run("insert into sql_test_notes values (2, 'carol@example.org')");
    const inside = await s.run('select note from sql_test_notes');
    expect(rowsOf(inside)).toEqual([['•••••••••••••.org']]);
    expect((await s.run('rollback')).at(-1)?.type).toBe('complete');
    expect(rowsOf(await s.run('select count(*) from sql_test_notes'))).toEqual([['0']]);

    const returning = await s.run("insert into sql_test_notes values (3, 'x'), (4, 'y') returning id");
    expect(rowsOf(returning)).toEqual([['3'], ['4']]);
    expect(of(returning, 'done')[0]).toMatchObject({ command: 'INSERT', rowCount: 2 });
    // DROP waits for an approver; cancelling the run cancels the review and nothing ran.
    expect((await s.run('drop table sql_test_notes', { id: 'drop-notes' })).at(-1)).toMatchObject({
      type: 'review',
      status: 'pending',
      rule: 'drop-object',
    });
    s.send({ type: 'cancel', id: 'drop-notes' });
    await s.waitFor((f) => f.type === 'cancelled' && f.id === 'drop-notes');
    expect((await admin.query("select to_regclass('public.sql_test_notes') as t")).rows[0].t).toBe(
      'sql_test_notes',
    );
    expect((await s.run('delete from sql_test_notes where id > 0')).at(-1)).toMatchObject({
      type: 'complete',
    });
  });
});

describe('guardrails', () => {
  it('holds DELETE without WHERE for review before anything runs; denied, nothing runs', async () => {
    // This client does not say `reviews: true` when it opens: every session has statement review.
    const s = await openSql(await grant('write'));
    const before = await count();
    const frames = await s.run('delete from customers', { id: 'del-all' });
    expect(frames).toEqual([
      expect.objectContaining({
        type: 'review',
        status: 'pending',
        statementIndex: 0,
        rule: 'delete-without-where',
        statement: 'delete from customers',
        reviewId: expect.any(String),
      }),
    ]);
    const reviewId = (frames[0] as { reviewId: string }).reviewId;
    expect(await count()).toBe(before);
    await t.client(await t.token('bob')).denyReview(reviewId, 'not the whole table');
    const denied = await s.waitFor((f) => f.type === 'blocked' && f.id === 'del-all');
    expect(denied).toMatchObject({
      code: 'review_denied',
      rule: 'delete-without-where',
      message: 'denied by bob: not the whole table',
    });
    expect(await count()).toBe(before);
    const blocked = (await t.gw.ledger.list({ kind: 'sql.blocked', limit: 10_000 })).at(-1);
    expect(blocked?.data).toMatchObject({
      rule: 'delete-without-where',
      verdict: 'review',
      outcome: 'denied',
      reviewId,
    });
  });

  it('decides a batch as a whole: `select 1; drop table customers` is held, `… alter system` blocked', async () => {
    const s = await openSql(await grant('write'));
    const frames = await s.run('select 1; drop table customers', { id: 'drop-customers' });
    expect(frames.map((f) => f.type)).toEqual(['review']);
    expect(frames[0]).toMatchObject({
      status: 'pending',
      statementIndex: 1,
      rule: 'drop-object',
      statement: 'drop table customers',
    });
    // Not even the `select 1` ran: no columns, rows or done while the batch is held.
    s.send({ type: 'cancel', id: 'drop-customers' });
    await s.waitFor((f) => f.type === 'cancelled' && f.id === 'drop-customers');
    expect(s.frames.filter((f) => 'id' in f && f.id === 'drop-customers').map((f) => f.type)).toEqual([
      'review',
      'cancelled',
    ]);
    const exists = await admin.query("select to_regclass('public.customers') as t");
    expect(exists.rows[0].t).toBe('customers');
    const blockedHard = await s.run('select 1; alter system set work_mem = 1');
    expect(blockedHard[0]).toMatchObject({ type: 'blocked', rule: 'alter-system' });
    expect((blockedHard[0] as { message: string }).message).not.toMatch(/review/);
  });

  it("returns the parser's message and position for SQL that does not parse", async () => {
    const s = await openSql(await grant('read'));
    const frames = await s.run('select 1;\nselect * fro customers');
    expect(frames).toEqual([expect.objectContaining({ type: 'error', code: '42601', position: 20 })]);
    expect((frames[0] as { message: string }).message).toMatch(/syntax error at or near "fro"/);
  });

  it("passes PostgreSQL's runtime errors through with SQLSTATE and position", async () => {
    const s = await openSql(await grant('read'));
    const div = await s.run('select 1/0');
    expect(div.at(-1)).toMatchObject({
      type: 'error',
      code: '22012',
      statementIndex: 0,
      message: 'division by zero',
    });
    const col = await s.run('select 1;\nselect nosuch from customers');
    expect(col.at(-1)).toMatchObject({ type: 'error', code: '42703', statementIndex: 1, position: 18 });
    // The session carries on.
    expect((await s.run('select 2')).at(-1)).toMatchObject({ type: 'complete' });
  });
});

describe('read level', () => {
  it('is enforced by the database: writes fail with 25006 and the table is unchanged', async () => {
    const w = await openSql(await grant('write'));
    expect((await w.run('create sequence if not exists sql_test_seq')).at(-1)?.type).toBe('complete');
    const r = await openSql(await grant('read'));
    expect(r.ready).toMatchObject({ level: 'read', readOnly: true });
    expect(rowsOf(await r.run('show default_transaction_read_only'))).toEqual([['on']]);
    const before = await count();
    const expectRefused = (frames: Frame[], what: string) => {
      const last = frames.at(-1) as { type: string; code?: string };
      const refusedByDb = last.type === 'error' && last.code === '25006';
      const refusedByGuard = last.type === 'blocked';
      expect(refusedByDb || refusedByGuard, `${what}: ${JSON.stringify(last)}`).toBe(true);
      return last;
    };
    const insert = expectRefused(
      await r.run(
        "insert into customers (name, email, card_number, country) values ('x', 'x@y.example', '1', 'US')",
      ),
      'insert',
    );
    expect(insert).toMatchObject({ type: 'error', code: '25006' });
    expect(expectRefused(await r.run("select nextval('sql_test_seq')"), 'nextval')).toMatchObject({
      code: '25006',
    });
    expectRefused(
      await r.run(
        "select set_config('default_transaction_read_only', 'off', false); insert into customers (name, email, card_number, country) values ('x', 'x2@y.example', '1', 'US')",
      ),
      'set_config + insert',
    );
    expect(
      expectRefused(
        await r.run('with d as (delete from customers where id = 1 returning *) select count(*) from d'),
        'writable CTE',
      ),
    ).toMatchObject({ code: '25006' });
    expectRefused(
      await r.run(
        "reset all; insert into customers (name, email, card_number, country) values ('x', 'x3@y.example', '1', 'US')",
      ),
      'reset all',
    );
    expectRefused(
      await r.run(
        "commit; insert into customers (name, email, card_number, country) values ('x', 'x4@y.example', '1', 'US')",
      ),
      'commit',
    );
    expect(await count()).toBe(before);
    // Still a working session.
    expect(rowsOf(await r.run('select count(*) from customers'))).toEqual([[String(before)]]);
  });

  it('holds without the guard: PostgreSQL refuses what the rules would have let through', async () => {
    const g = await t.gw.store.db
      .selectFrom('grants')
      .selectAll()
      .where('id', '=', await grant('read'))
      .executeTakeFirstOrThrow();
    const open = async (frames: Frame[]) =>
      openSqlSession(pgServer, {
        grantId: g.id,
        ledger: t.gw.ledger,
        send: (f) => void frames.push(f),
        rules: [], // no guard rules at all (the read-only ones still apply to RESET/COMMIT)
      });
    const insert = (email: string) =>
      `insert into customers (name, email, card_number, country) values ('x', '${email}', '1', 'US')`;
    const before = await count();

    // Writes fail in the database itself (25006), without any rule.
    const plainFrames: Frame[] = [];
    const plain = await open(plainFrames);
    try {
      await plain.run({ id: 'w1', sql: insert('x4@y.example') });
      expect(plainFrames.filter((f) => 'id' in f && f.id === 'w1').at(-1)).toMatchObject({
        type: 'error',
        code: '25006',
      });
      await plain.run({ id: 'w2', sql: `select 1; ${insert('x4@y.example')}` });
      expect(plainFrames.filter((f) => 'id' in f && f.id === 'w2').at(-1)).toMatchObject({
        type: 'error',
        code: '25006',
        statementIndex: 1,
      });
    } finally {
      await plain.close('test over', 'client_closed');
    }

    // A function the guard cannot see into turns the session default off. The statement itself
    // runs read-only; PostgreSQL reports the change and the session closes before anything else.
    await admin.query(
      `create or replace function public.sp_innocent() returns text language sql as
         $$ select set_config('default_transaction_read_only', 'off', false) $$`,
    );
    for (const [label, sql] of [
      ['a function', 'select public.sp_innocent()'],
      [
        'a computed set_config in a batch',
        "select set_config(n, 'off', false) from (values ('default_transaction_read_only')) v(n); select 1",
      ],
    ] as const) {
      const frames: Frame[] = [];
      const session = await open(frames);
      try {
        await session.run({ id: 'x1', sql });
        await session.close('test over', 'client_closed'); // waits if the watchdog closed it first
        await session.run({ id: 'x2', sql: insert('x6@y.example') });
        const closed = frames.find((f) => f.type === 'closed');
        expect(closed, label).toMatchObject({ type: 'closed', code: 'error' });
        expect((closed as { reason: string }).reason, label).toMatch(/stopped being read-only/);
        expect(frames.filter((f) => 'id' in f && f.id === 'x2').at(-1), label).toMatchObject({
          type: 'error',
          code: 'session_closed',
        });
        const lost = await t.gw.ledger.list({ kind: 'sql.session.read_only_lost' });
        expect(
          lost.some((e) => (e.data as { sessionId?: string }).sessionId === session.id),
          label,
        ).toBe(true);
      } finally {
        await session.close('test over', 'client_closed');
      }
    }
    expect(await count()).toBe(before);
  });
});

describe('long results and cancel', () => {
  it('cancels a running statement with a PostgreSQL cancel request', async () => {
    const s = await openSql(await grant('read'));
    s.start('select pg_sleep(30)', 'sleepy');
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    s.send({ type: 'cancel', id: 'sleepy' });
    await s.waitFor((f) => f.type === 'cancelled' && f.id === 'sleepy', 5000);
    const elapsed = Date.now() - t0;
    console.log(`cancel → cancelled in ${elapsed} ms`);
    expect(elapsed).toBeLessThan(2000);
    expect((await s.run('select 1')).at(-1)).toMatchObject({ type: 'complete' });
  });

  it('describes the columns of a long first result (catalogue lookups inside the open portal)', async () => {
    // A fresh session knows no types or tables yet, and a result longer than one page keeps the
    // connection busy: the lookups must run inside the suspended portal's exchange.
    const s = await openSql(await grant('read'));
    const frames = await s.run(
      'select c.id, c.name, g from customers c cross join generate_series(1, 1000) g',
    );
    const [cols] = of(frames, 'columns');
    expect(cols?.columns).toEqual([
      { name: 'id', type: 'int4', table: 'customers', schema: 'public' },
      { name: 'name', type: 'text', table: 'customers', schema: 'public' },
      { name: 'g', type: 'int4' },
    ]);
    expect(of(frames, 'rows').length).toBeGreaterThan(1);
    expect(frames.at(-1)).toMatchObject({ type: 'complete' });
  });

  it('streams a 200 000-row result in batches, truncated at the cap, memory bounded', async () => {
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    /** Peak RSS above the level after a full GC, sampled every 10 ms while `fn` runs. */
    const rssPeak = async (fn: () => Promise<void>) => {
      gc();
      const base = process.memoryUsage().rss;
      let peak = 0;
      const timer = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss - base);
      }, 10);
      try {
        await fn();
      } finally {
        clearInterval(timer);
      }
      return Math.max(peak, process.memoryUsage().rss - base);
    };

    const s = await openSql(await grant('read'));
    let frames: Frame[] = [];
    const through = await rssPeak(async () => {
      frames = await s.run('select g, md5(g::text) from generate_series(1, 200000) g');
    });
    const batches = of(frames, 'rows');
    expect(batches.length).toBeGreaterThanOrEqual(20);
    expect(Math.max(...batches.map((b) => b.rows.length))).toBeLessThanOrEqual(500);
    expect(rowsOf(frames)).toHaveLength(10_000);
    expect(of(frames, 'done')[0]).toMatchObject({ rowCount: 10_000, truncated: true });

    // The same stream without the cap, straight through SqlSession: 200 000 rows, nothing kept.
    const g = await grant('read');
    let rows = 0;
    let batchCount = 0;
    let livePeak = 0;
    let heapBase = 0;
    const session = await openSqlSession(pgServer, {
      grantId: g,
      ledger: t.gw.ledger,
      maxRows: 1_000_000,
      send: (f) => {
        if (f.type !== 'rows') return;
        rows += f.rows.length;
        // Every 40th batch: what is still alive after a full GC (the gateway keeps nothing).
        if (++batchCount % 40 === 0) {
          gc();
          livePeak = Math.max(livePeak, process.memoryUsage().heapUsed - heapBase);
        }
      },
    });
    gc();
    heapBase = process.memoryUsage().heapUsed;
    const uncapped = await rssPeak(() =>
      session.run({ id: 'big', sql: 'select g, md5(g::text) from generate_series(1, 200000) g' }),
    );
    await session.close('done', 'client_closed');
    expect(rows).toBe(200_000);

    // For comparison: the same result materialised by one plain query.
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const plain = await admin.query({
      text: 'select g, md5(g::text) from generate_series(1, 200000) g',
      rowMode: 'array',
    });
    gc();
    const materialised = process.memoryUsage().heapUsed - heapBefore;
    expect(plain.rows).toHaveLength(200_000);
    console.log(
      `200k-row result: through the gateway with the 10k cap, peak RSS +${mib(through)}; ` +
        `uncapped SqlSession stream of all 200k rows, peak RSS +${mib(uncapped)}, live heap after GC at most +${mib(livePeak)}; ` +
        `the same result held by one plain pg query: live heap +${mib(materialised)}`,
    );
    expect(uncapped).toBeLessThan(64 * 2 ** 20);
    expect(livePeak).toBeLessThan(8 * 2 ** 20);
    expect(materialised).toBeGreaterThan(4 * livePeak);
  });
});

describe('sessions end', () => {
  it('closes a live session on revoke, with the reason, and records it', async () => {
    const id = await grant('read');
    const s = await openSql(id);
    await api.revoke(id, 'rotation done');
    const closed = await s.waitFor((f) => f.type === 'closed');
    expect(closed).toMatchObject({
      code: 'grant_ended',
      reason: 'Your access grant was revoked (rotation done); the session is closed.',
    });
    expect((await s.closed).code).toBe(4410);
    expect((await sessionEnded(s.ready.sessionId))?.data).toMatchObject({ code: 'grant_ended', grantId: id });
    expect((await receipt(id))?.data).toMatchObject({ sessionsClosed: 1 });
    // The grant cannot open another session.
    await expect(openSql(id)).rejects.toMatchObject({ frame: { type: 'error', code: 'grant_revoked' } });
  });

  it('closes a live session (and cancels its statement) when the grant expires', async () => {
    const id = await grant('read', 3);
    const s = await openSql(id);
    s.start('select pg_sleep(20)', 'long');
    const closed = await s.waitFor((f) => f.type === 'closed', 15_000);
    expect(closed).toMatchObject({
      code: 'grant_ended',
      reason: 'Your access grant has expired; the session is closed.',
    });
    expect(s.frames.some((f) => f.type === 'cancelled' && f.id === 'long')).toBe(true);
    expect((await receipt(id))?.data).toMatchObject({ sessionsClosed: 1 });
    const active = await admin.query(
      "select count(*)::int as n from pg_stat_activity where application_name = 'sallyport:alice' and wait_event = 'PgSleep'",
    );
    expect(active.rows[0].n).toBe(0);
  });

  it('reports a lost database connection clearly and ends the session without a crash', async () => {
    const s = await openSql(await grant('read'));
    s.start('select pg_sleep(10)', 'doomed');
    let pid: number | undefined;
    for (let i = 0; i < 50 && pid === undefined; i++) {
      const r = await admin.query(
        "select pid from pg_stat_activity where application_name = 'sallyport:alice' and wait_event = 'PgSleep'",
      );
      pid = r.rows[0]?.pid;
      if (pid === undefined) await new Promise((res) => setTimeout(res, 100));
    }
    expect(pid).toBeDefined();
    await admin.query('select pg_terminate_backend($1)', [pid]);
    const err = await s.waitFor((f) => f.type === 'error' && f.id === 'doomed');
    expect(err).toMatchObject({ code: '57P01' });
    const closed = await s.waitFor((f) => f.type === 'closed');
    expect(closed).toMatchObject({ code: 'connection_lost' });
    expect((closed as { reason: string }).reason).toMatch(/connection to the database was lost/);
    expect((await sessionEnded(s.ready.sessionId))?.data).toMatchObject({ code: 'connection_lost' });
    // The gateway is fine: a new session works.
    const again = await openSql(await grant('read'));
    expect((await again.run('select 1')).at(-1)).toMatchObject({ type: 'complete' });
  });
});

describe('the sallyport sql command', () => {
  const cli = async (argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s) };
    const code = await main(argv, io, {
      SALLYPORT_HOME: home,
      SALLYPORT_GATEWAY: t.url,
      SALLYPORT_TOKEN: token,
    });
    const result = { code, out: out.join('\n'), err: err.join('\n') };
    recordTranscript('cli', JSON.stringify(result));
    return result;
  };

  it('prints CSV, tables and JSON, masked, with exit codes for errors and blocks', async () => {
    await grant('read');
    const csv = await cli(['sql', 'demo', '-c', 'select count(*) from customers', '--format', 'csv']);
    expect(csv, csv.err).toMatchObject({ code: 0, out: 'count\n50' });

    const table = await cli(['sql', 'demo', '-c', 'select name, email from customers order by id limit 2']);
    expect(table.code, table.err).toBe(0);
    expect(table.out).toContain(customers[0]!.name);
    expect(table.out).toContain('(2 rows)');
    expect(table.out).not.toContain(rawEmails[0]);
    expect(table.out).toContain('.com');

    const json = await cli([
      'sql',
      'demo',
      '-c',
      'select card_number from customers order by id',
      '--format',
      'json',
      '--max-rows',
      '3',
    ]);
    expect(json.code, json.err).toBe(0);
    const parsed = JSON.parse(json.out) as {
      results: Array<{ rows: string[][]; masked: number[][]; truncated: boolean }>;
    };
    expect(parsed.results[0]).toMatchObject({ truncated: true });
    expect(parsed.results[0]?.rows).toHaveLength(3);
    expect(parsed.results[0]?.masked).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
    ]);
    expect(json.out).not.toContain(rawCards[0]);

    const noisy = await cli(['sql', 'demo', '-c', "select noisy(1, 'hello')", '--format', 'csv']);
    expect(noisy.code, noisy.err).toBe(0);
    expect(noisy.out).toBe('noisy\n1');
    expect(noisy.err.split('\n')).toEqual([
      'NOTICE:  hello 1',
      'WARNING:  last of 1',
      'HINT:  hint for hello',
    ]);

    const error = await cli(['sql', 'demo', '-c', 'select 1/0']);
    expect(error.code).toBe(1);
    expect(error.err).toContain('division by zero (SQLSTATE 22012)');

    const blocked = await cli(['sql', 'demo', '-c', 'drop database demo']);
    expect(blocked.code).toBe(8);
    expect(blocked.err).toContain('drop-database');

    const noGrant = await cli(['sql', 'nosuch', '-c', 'select 1']);
    expect(noGrant.code).not.toBe(0);
  });

  it("does not pass the database's control characters on to the terminal", async () => {
    await grant('read');
    // A value that would set the terminal's title, in a column name, a cell, a notice and an error.
    const title = String.raw`E'\x1b]0;owned\x07'`;
    const table = await cli(['sql', 'demo', '-c', `select ${title} as "t\u001b[31m", 'plain' as p`]);
    expect(table.code, table.err).toBe(0);
    expect(table.out).not.toContain('\u001b');
    expect(table.out).not.toContain('\u0007');
    expect(table.out).toContain('\\u001b]0;owned\\u0007');
    expect(table.out).toContain('t\\u001b[31m');
    const notice = await cli(['sql', 'demo', '-c', `select noisy(1, ${title})`, '--format', 'csv']);
    expect(notice.code, notice.err).toBe(0);
    expect(notice.err.split('\n')[0]).toBe('NOTICE:  \\u001b]0;owned\\u0007 1');
    const error = await cli(['sql', 'demo', '-c', `select (${title})::int`]);
    expect(error.code).toBe(1);
    expect(error.err).toContain('invalid input syntax for type integer: "\\u001b]0;owned\\u0007"');
    expect(error.err).not.toContain('\u001b');
    // Scripts get the exact bytes: CSV and JSON are not rewritten.
    const csv = await cli(['sql', 'demo', '-c', `select ${title} as v`, '--format', 'csv']);
    expect(csv.out).toBe('v\n\u001b]0;owned\u0007');
  });
});
