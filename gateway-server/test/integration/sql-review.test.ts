// Statement review on the SQL channel against a real PostgreSQL: a batch whose verdict is `review`
// is held (exact text, kinds, tables, EXPLAIN estimate) and nothing runs; approved, it runs once,
// exactly as held; denied, the client gets the approver's reason; the session ending cancels the
// review; the recording and the ledger name the review and the approver; the CLI waits.
//
// Two targets on the same database: `db` has the built-in rules only; `db-strict` also has a rule
// from the config (`guardrails.sql.rules`, scoped to it): every DELETE on customers needs review.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type GatewayClient,
  type ReviewView,
  SqlRecordingLine,
  type SqlServerMessage,
} from '@sallyport/protocol';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { sha256Hex } from '../../src/access/reviews';
import type { Actor } from '../../src/access/service';
import { main } from '../../src/cli/main';
import type { Io } from '../../src/cli/output';
import type { GatewayConfigInput } from '../../src/config/schema';
import { type RunningPostgres, seedDemoCustomers, startPostgres } from '../../src/devstack';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { adminClient, postgresTarget } from '../rig/postgres';
import { recordTranscript, registerSecret } from '../rig/transcript';

type Frame = SqlServerMessage;
/** Frames that end a run (`review` does not: the run waits). */
const TERMINAL = new Set(['complete', 'error', 'blocked', 'cancelled']);
const REASON = 'cleaning up test customers for ticket OPS-120';

type TargetId = 'db' | 'db-strict';

let pgServer: RunningPostgres;
let t: TestGateway;
let admin: pg.Client;
let home: string;
const api = {} as Record<'alice' | 'bob' | 'carol', GatewayClient>;
let aliceToken: string;
const sockets: SqlSocket[] = [];
let runSeq = 0;

interface SqlSocket {
  frames: Frame[];
  ready: Extract<Frame, { type: 'ready' }>;
  start(sql: string, id?: string): string;
  /** Sends `run` and resolves with the run's frames once its terminal frame is there. */
  run(sql: string): Promise<Frame[]>;
  send(frame: unknown): void;
  waitFor(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  framesOf(id: string): Frame[];
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

async function openSql(
  grantId: string,
  opts: { target?: TargetId; reviews?: boolean } = {},
): Promise<SqlSocket> {
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/sql`, {
    headers: { authorization: `Bearer ${aliceToken}` },
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
      const check = () => {
        const hit = frames.find(pred);
        if (!hit) return false;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(hit);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`frame not seen within ${timeoutMs} ms; got ${JSON.stringify(frames)}`));
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const send = (frame: unknown) => ws.send(JSON.stringify(frame));
  // `reviews: true` is what older clients send; it changes nothing (every session has review).
  send({
    type: 'open',
    targetId: opts.target ?? 'db',
    grantId,
    ...(opts.reviews === undefined ? {} : { reviews: opts.reviews }),
  });
  const first = await waitFor((f) => f.type === 'ready' || f.type === 'error');
  if (first.type !== 'ready') throw new Error(`open refused: ${JSON.stringify(first)}`);
  const framesOf = (id: string) => frames.filter((f) => 'id' in f && f.id === id);
  const socket: SqlSocket = {
    frames,
    ready: first,
    send,
    waitFor,
    framesOf,
    closed,
    start(sql, id = `r${++runSeq}`) {
      send({ type: 'run', id, sql });
      return id;
    },
    async run(sql) {
      const id = socket.start(sql);
      await waitFor((f) => TERMINAL.has(f.type) && 'id' in f && f.id === id);
      return framesOf(id);
    },
    close: () => ws.close(),
  };
  sockets.push(socket);
  return socket;
}

const reviewFrame = (s: SqlSocket, id: string, status: 'pending' | 'approved' = 'pending') =>
  s.waitFor((f) => f.type === 'review' && f.id === id && f.status === status) as Promise<
    Extract<Frame, { type: 'review' }>
  >;

async function grant(targetId: TargetId = 'db', level: 'write' | 'read' = 'write'): Promise<string> {
  const out = await api.alice.requestAccess({
    targetId,
    level,
    duration: '1h',
    reason: REASON,
  });
  if (out.outcome !== 'granted') throw new Error('expected an automatic grant');
  return out.grant.id;
}

const count = async () => Number((await admin.query('select count(*)::int as n from customers')).rows[0].n);

/** Back to the 50 seeded customers, ids 1…50, with fresh statistics. */
async function reseed() {
  await admin.query('truncate customers restart identity');
  await seedDemoCustomers({
    host: pgServer.host,
    port: pgServer.port,
    user: pgServer.user,
    password: pgServer.password,
    database: pgServer.database,
  });
  await admin.query('analyze customers');
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const reviewOf = async (id: string, as: 'bob' | 'carol' = 'carol'): Promise<ReviewView | undefined> =>
  (await api[as].reviews(as === 'carol' ? { scope: 'all' } : {})).find((r) => r.id === id);

const alice: Actor = {
  username: 'alice',
  subject: 'user-alice',
  kind: 'user',
  groups: ['developers'],
  roles: ['developer'],
};

beforeAll(async () => {
  pgServer = await startPostgres({ seedDemo: true });
  registerSecret(pgServer.password);
  home = mkdtempSync(path.join(tmpdir(), 'sallyport-sql-review-cli-'));
  const target = (id: TargetId) => postgresTarget(pgServer, { id, labels: { env: 'sql-review-test' } });
  const config: Partial<GatewayConfigInput> = {
    targets: [target('db'), target('db-strict')],
    guardrails: {
      sql: {
        rules: [
          {
            name: 'customers-delete',
            action: 'review',
            message: 'Deleting customers needs approval.',
            match: { kinds: ['DeleteStmt'], relations: ['customers'] },
            explain: true,
            targets: { ids: ['db-strict'] },
          },
        ],
      },
    },
    // access.reviewers is left at its default: the `approvers` group (bob and dave).
    access: {
      rules: [
        {
          name: 'db-write',
          requesters: { users: ['alice'] },
          targets: { ids: ['db', 'db-strict'] },
          levels: ['write', 'read'],
          maxDuration: '8h',
          approval: 'auto',
        },
      ],
    },
  };
  t = await startTestGateway({ config });
  aliceToken = await t.token('alice');
  for (const u of ['alice', 'bob', 'carol'] as const)
    api[u] = t.client(u === 'alice' ? aliceToken : await t.token(u));
  admin = await adminClient(pgServer);
  await reseed();
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await admin?.end().catch(() => {});
  await t?.stop();
  await pgServer?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

let mainSession: string;
let mainReview: string;

describe('statement review', () => {
  it('holds DELETE without WHERE for an approver, runs it once when approved, and asks again next time', async () => {
    const s = await openSql(await grant());
    mainSession = s.ready.sessionId;
    const sql = 'DELETE FROM customers';
    const id = s.start(sql);
    const held = await reviewFrame(s, id);
    expect(held).toMatchObject({
      statementIndex: 0,
      rule: 'delete-without-where',
      statement: sql,
      reviewId: expect.any(String),
    });
    const reviewId = held.reviewId as string;
    mainReview = reviewId;

    // What bob, an approver, sees: the exact SQL, kinds, tables and PostgreSQL's estimate.
    const inbox = await reviewOf(reviewId, 'bob');
    expect(inbox).toMatchObject({
      status: 'pending',
      requester: 'alice',
      text: sql,
      rule: 'delete-without-where',
    });
    expect(inbox?.details).toMatchObject({ kinds: ['DeleteStmt'], relations: ['customers'] });
    const [estimate] = (inbox?.details.explain ?? []) as Array<{ statementIndex: number; planRows: number }>;
    expect(estimate).toMatchObject({ statementIndex: 0, kind: 'DeleteStmt' });
    expect(estimate?.planRows).toBeGreaterThanOrEqual(40);
    expect(estimate?.planRows).toBeLessThanOrEqual(60);

    // Nothing ran, and the session runs nothing else while it waits.
    expect(await count()).toBe(50);
    const other = await s.run('select 1');
    expect(other).toEqual([expect.objectContaining({ type: 'error', code: 'busy' })]);
    expect((other[0] as { message: string }).message).toContain(`waiting for approval (review ${reviewId})`);
    expect(s.framesOf(id).map((f) => f.type)).toEqual(['review']);

    await api.bob.approveReview(reviewId, 'retention clean-up, plan checked');
    await s.waitFor((f) => TERMINAL.has(f.type) && 'id' in f && f.id === id);
    const frames = s.framesOf(id);
    expect(frames.map((f) => f.type)).toEqual(['review', 'review', 'done', 'complete']);
    expect(frames[1]).toMatchObject({ status: 'approved', decidedBy: 'bob', reviewId });
    expect(frames[2]).toMatchObject({ command: 'DELETE', rowCount: 50 });
    expect(await count()).toBe(0);
    expect((await reviewOf(reviewId))?.status).toBe('used');

    // The approval was used: the same text waits for a new review.
    const again = s.start(sql);
    const second = await reviewFrame(s, again);
    expect(second.reviewId).not.toBe(reviewId);
    // The client cancels the wait: the review is cancelled, nothing runs.
    s.send({ type: 'cancel', id: again });
    await s.waitFor((f) => f.type === 'cancelled' && f.id === again);
    expect(await reviewOf(second.reviewId as string)).toMatchObject({
      status: 'cancelled',
      decisionReason: 'cancelled by the requester',
    });
    expect(await s.run('select count(*) from customers')).toContainEqual(
      expect.objectContaining({ type: 'done', rowCount: 1 }),
    );
  });

  it('records the statement with verdict review and the approver, in the recording and the ledger', async () => {
    const s = sockets.find((x) => x.ready.sessionId === mainSession) as SqlSocket;
    s.close();
    await s.closed;
    await until('recording.closed', async () =>
      (await t.gw.ledger.list({ kind: 'recording.closed', limit: 10_000 })).find(
        (e) => e.data.sessionId === mainSession,
      ),
    );
    const lines = readFileSync(path.join(t.dataDir, 'recordings', `${mainSession}.jsonl`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => SqlRecordingLine.parse(JSON.parse(l)));
    const statements = lines.filter((l) => l.type === 'statement' && l.sql === 'DELETE FROM customers');
    expect(statements.slice(0, 3)).toEqual([
      expect.objectContaining({ verdict: 'review', reviewId: mainReview, rule: 'delete-without-where' }),
      expect.objectContaining({
        verdict: 'review',
        reviewId: mainReview,
        message: expect.stringMatching(/^approved by bob/),
      }),
      expect.objectContaining({ verdict: 'allow', command: 'DELETE', rowCount: 50 }),
    ]);
    // Statement events are written behind the statement (group commit): wait for it.
    let ran: Record<string, unknown> | undefined;
    await expect
      .poll(async () => {
        const events = await t.gw.ledger.list({ kind: 'sql.statements', limit: 10_000 });
        ran = events
          .filter((e) => e.data.sessionId === mainSession)
          .flatMap((e) => e.data.statements as Record<string, unknown>[])
          .find((st) => st.reviewId === mainReview);
        return ran;
      })
      .toBeDefined();
    expect(ran).toMatchObject({ verdict: 'review', approvedBy: 'bob', outcome: 'ok', rowCount: 50 });
    const kinds = (await t.gw.ledger.list({ kind: 'review.*', limit: 10_000 }))
      .filter((e) => e.data.reviewId === mainReview)
      .map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['review.requested', 'review.approved', 'review.used']));
    expect(await t.gw.ledger.verify()).toMatchObject({ ok: true });
  });

  it('refuses at once, without asking an approver, a held write that a read-only session could never run', async () => {
    const s = await openSql(await grant('db', 'read'));
    const before = await count();
    const pendingBefore = (await api.bob.reviews({ scope: 'inbox', status: 'pending' })).length;
    const frames = await s.run('select 1; DELETE FROM customers');
    expect(frames.at(-1)).toMatchObject({
      type: 'blocked',
      statementIndex: 1,
      rule: 'read-only-session',
      statement: 'DELETE FROM customers',
    });
    expect((frames.at(-1) as { message: string }).message).toMatch(/read-only: DeleteStmt cannot run/);
    expect(frames.some((f) => f.type === 'review')).toBe(false);
    expect((await api.bob.reviews({ scope: 'inbox', status: 'pending' })).length).toBe(pendingBefore);
    expect(await count()).toBe(before);
    const blocked = await t.gw.ledger.list({ kind: 'sql.blocked' });
    expect(blocked.at(-1)?.data).toMatchObject({ sessionId: s.ready.sessionId, rule: 'read-only-session' });
    // A read that a rule would not hold still runs in the same session.
    expect((await s.run('select count(*) from customers')).at(-1)).toMatchObject({ type: 'complete' });
  });

  it("answers a denial with the approver's reason, and nothing runs", async () => {
    await reseed();
    const s = await openSql(await grant());
    const id = s.start('DELETE FROM customers');
    const { reviewId } = await reviewFrame(s, id);
    await api.bob.denyReview(reviewId as string, 'not during the sale; use the archive job');
    await s.waitFor((f) => TERMINAL.has(f.type) && 'id' in f && f.id === id);
    expect(s.framesOf(id).at(-1)).toEqual({
      type: 'blocked',
      id,
      statementIndex: 0,
      rule: 'delete-without-where',
      statement: 'DELETE FROM customers',
      code: 'review_denied',
      message: 'denied by bob: not during the sale; use the archive job',
    });
    expect(await count()).toBe(50);
    // The session goes on.
    expect((await s.run('select 1')).at(-1)).toMatchObject({ type: 'complete' });
  });

  it('binds the approval to the held text: the session runs exactly that, and no other text can use it', async () => {
    const s = await openSql(await grant('db-strict'), { target: 'db-strict' });
    const sql = 'DELETE FROM customers WHERE id = 1';
    const id = s.start(sql);
    const { reviewId } = await reviewFrame(s, id);
    const review = (await reviewOf(reviewId as string, 'bob')) as ReviewView;
    expect(review).toMatchObject({ text: sql, sha256: sha256Hex(sql), rule: 'customers-delete' });
    expect(review.details.explain).toEqual([{ statementIndex: 0, kind: 'DeleteStmt', planRows: 1 }]);
    await api.bob.approveReview(review.id);
    await s.waitFor((f) => TERMINAL.has(f.type) && 'id' in f && f.id === id);
    expect(s.framesOf(id).filter((f) => f.type === 'done')).toEqual([
      expect.objectContaining({ command: 'DELETE', rowCount: 1 }),
    ]);
    expect(await count()).toBe(49);
    const used = (await t.gw.ledger.list({ kind: 'review.used', limit: 10_000 })).find(
      (e) => e.data.reviewId === review.id,
    );
    expect(used?.data.sha256).toBe(sha256Hex(sql));
    // Another statement cannot ride on the approval (nor the same one twice).
    expect(await t.gw.reviews.consume(review.id, 'DELETE FROM customers', alice)).toBe(false);
    expect(await t.gw.reviews.consume(review.id, sql, alice)).toBe(false);

    // And an approval not yet used is still bound to its text.
    const other = s.start('DELETE FROM customers WHERE id = 2');
    const pending = await reviewFrame(s, other);
    await api.bob.approveReview(pending.reviewId as string);
    await s.waitFor((f) => TERMINAL.has(f.type) && 'id' in f && f.id === other);
    expect(await count()).toBe(48);
    expect(
      await t.gw.reviews.consume(pending.reviewId as string, 'DELETE FROM customers WHERE id = 3', alice),
    ).toBe(false);
  });

  it("estimates inside the user's open transaction without changing it", async () => {
    const s = await openSql(await grant('db-strict'), { target: 'db-strict' });
    expect((await s.run('begin')).at(-1)).toMatchObject({ type: 'complete' });
    expect((await s.run("update customers set name = 'Renamed' where id = 9")).at(-1)).toMatchObject({
      type: 'complete',
    });
    const id = s.start('DELETE FROM customers WHERE id = 9');
    const { reviewId } = await reviewFrame(s, id);
    expect((await reviewOf(reviewId as string, 'bob'))?.details.explain).toEqual([
      { statementIndex: 0, kind: 'DeleteStmt', planRows: 1 },
    ]);
    await api.bob.denyReview(reviewId as string, 'not this one');
    await s.waitFor((f) => f.type === 'blocked' && f.id === id);
    // Still the same transaction, still writable (the read-only savepoint was rolled back).
    expect((await s.run("update customers set name = 'Again' where id = 9")).at(-1)).toMatchObject({
      type: 'complete',
    });
    const seen = await s.run('select name from customers where id = 9');
    expect(seen.flatMap((f) => (f.type === 'rows' ? f.rows : []))).toEqual([['Again']]);
    expect((await s.run('rollback')).at(-1)).toMatchObject({ type: 'complete' });
    const name = await admin.query('select name from customers where id = 9');
    expect(name.rows[0].name).not.toMatch(/^(Renamed|Again)$/);
    expect(await count()).toBe(48);
  });

  it('cancels the review when the session is revoked while it waits', async () => {
    const g = await grant();
    const s = await openSql(g);
    const id = s.start('DELETE FROM customers');
    const { reviewId } = await reviewFrame(s, id);
    await api.alice.revoke(g, 'done for today');
    await s.waitFor((f) => f.type === 'closed');
    expect(s.framesOf(id).map((f) => f.type)).toEqual(['review', 'cancelled']);
    expect(await reviewOf(reviewId as string)).toMatchObject({
      status: 'cancelled',
      decisionReason: 'session ended',
    });
    expect(await api.bob.approveReview(reviewId as string).catch((e) => e.code)).toBe('review_cancelled');
    expect(await count()).toBe(48);
  });

  it('holds review verdicts for every client, also one that opens with `reviews: false`', async () => {
    const s = await openSql(await grant(), { reviews: false });
    const id = s.start('DELETE FROM customers');
    const held = await reviewFrame(s, id);
    expect(held).toMatchObject({ rule: 'delete-without-where', reviewId: expect.any(String) });
    expect(await reviewOf(held.reviewId as string, 'bob')).toMatchObject({ status: 'pending' });
    s.send({ type: 'cancel', id });
    await s.waitFor((f) => f.type === 'cancelled' && f.id === id);
    expect(s.framesOf(id).map((f) => f.type)).toEqual(['review', 'cancelled']);
    expect(await reviewOf(held.reviewId as string)).toMatchObject({ status: 'cancelled' });
    expect(await count()).toBe(48);
  });

  it('applies the config rule to its target only: on `db` a DELETE with WHERE runs at once', async () => {
    const strict = await openSql(await grant('db-strict'), { target: 'db-strict' });
    const id = strict.start('DELETE FROM customers WHERE id = 5');
    expect(await reviewFrame(strict, id)).toMatchObject({ rule: 'customers-delete' });
    strict.send({ type: 'cancel', id });
    await strict.waitFor((f) => f.type === 'cancelled' && f.id === id);
    expect(await count()).toBe(48);
    const plain = await openSql(await grant());
    const ran = await plain.run('DELETE FROM customers WHERE id = 5');
    expect(ran.map((f) => f.type)).toEqual(['done', 'complete']);
    expect(await count()).toBe(47);
  });
});

describe('sallyport sql with review', () => {
  const cli = async (argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s) };
    const code = await main(argv, io, {
      SALLYPORT_HOME: home,
      SALLYPORT_GATEWAY: t.url,
      SALLYPORT_TOKEN: aliceToken,
    });
    const result = { code, out: out.join('\n'), err: err.join('\n') };
    recordTranscript('cli', JSON.stringify(result));
    return result;
  };
  const pendingFor = (text: string) =>
    until(`a pending review of "${text}"`, async () =>
      (await api.bob.reviews({ status: 'pending' })).find((r) => r.text === text),
    );

  it('waits for approval and prints the row count once approved', async () => {
    await reseed();
    await grant('db-strict');
    const sql = 'delete from customers where id > 40';
    const running = cli(['sql', 'db-strict', '-c', sql]);
    const review = await pendingFor(sql);
    expect(await count()).toBe(50);
    await api.bob.approveReview(review.id, 'ok');
    const result = await running;
    expect(result.code, result.err).toBe(0);
    expect(result.out).toBe('DELETE 10');
    expect(result.err).toContain(
      `waiting for approval (review ${review.id}): run \`sallyport reviews approve ${review.id}\` as an approver`,
    );
    expect(result.err).toContain('approved by bob');
    expect(await count()).toBe(40);
  });

  it('with --no-wait exits with code 9 and the review id', async () => {
    const result = await cli(['sql', 'db-strict', '-c', 'delete from customers where id = 7', '--no-wait']);
    expect(result.code, result.err).toBe(9);
    expect(result.out).toMatch(/^[0-9a-f-]{36}$/);
    // Nobody waits for it any more: the review is cancelled with the session.
    await until('the review to be cancelled', async () =>
      (await reviewOf(result.out))?.status === 'cancelled' ? true : undefined,
    );
    expect(await count()).toBe(40);
  });

  it('reports a denial with exit code 8', async () => {
    const sql = 'delete from customers where id = 8';
    const running = cli(['sql', 'db-strict', '-c', sql]);
    const review = await pendingFor(sql);
    await api.bob.denyReview(review.id, 'keep customer 8');
    const result = await running;
    expect(result.code).toBe(8);
    expect(result.err).toContain('denied by bob: keep customer 8');
    expect(await count()).toBe(40);
  });
});
