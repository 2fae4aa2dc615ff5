// How SQL statements reach the ledger (session.ts, recordStatement): the statements one session
// runs while a ledger write is pending share one `sql.statements` event, in order; any other event
// of the session (a refusal) closes the open one, so the chain keeps the session's order; a
// statement that fails gets an event of its own before the client hears of it; a ledger that
// cannot be written closes the session. Real PostgreSQL, real store (PGlite), real ledger.
import type { SqlServerMessage } from '@sallyport/protocol';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedger, type Ledger } from '../../src/audit';
import { type RunningPostgres, startPostgres } from '../../src/devstack';
import type { SqlSession } from '../../src/protocols/postgres/session';
import { openStore, type Store } from '../../src/store/db';
import { openSqlSession } from '../rig/postgres';

let pgServer: RunningPostgres;
let store: Store;
let ledger: Ledger;

beforeAll(async () => {
  pgServer = await startPostgres({ seedDemo: true });
  store = await openStore({ memory: true });
  ledger = createLedger(store);
});

afterAll(async () => {
  await store?.close();
  await pgServer?.stop();
});

let grantSeq = 0;
async function session(frames: SqlServerMessage[], l: Ledger = ledger): Promise<SqlSession> {
  return openSqlSession(pgServer, {
    grantId: `00000000-0000-4000-8000-${String(++grantSeq).padStart(12, '0')}`,
    ledger: l,
    send: (f) => void frames.push(f),
  });
}

/**
 * Holds the ledger's lock (the advisory lock every ledger write takes) until `release()`: writes
 * queue up behind it, as they do behind a slow store.
 */
async function holdLedger(): Promise<{ release(): Promise<void> }> {
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked = () => {};
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const done = store.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(7365817)`.execute(trx);
    locked();
    await gate;
  });
  await isLocked;
  return {
    async release() {
      release();
      await done;
    },
  };
}

async function eventsOf(sessionId: string) {
  const rows = await ledger.list({ kind: 'sql.*', limit: 10_000 });
  return rows.filter((r) => r.data.sessionId === sessionId);
}

describe('SQL statements in the ledger', () => {
  it('lists the statements of one session in few events, in order, while the ledger is behind', async () => {
    const frames: SqlServerMessage[] = [];
    const s = await session(frames);
    const held = await holdLedger();
    const runs = 30;
    for (let i = 1; i <= runs; i++) {
      await s.run({ id: `r${i}`, sql: `select id from customers where id = ${i}` });
      expect(frames.at(-1)).toMatchObject({ type: 'complete', id: `r${i}` });
    }
    // All thirty ran and completed while no ledger write could finish.
    await held.release();
    const listedSoFar = async () =>
      (await eventsOf(s.id))
        .filter((e) => e.kind === 'sql.statements')
        .flatMap((e) => e.data.statements as unknown[]).length;
    await expect.poll(listedSoFar).toBe(runs);
    // Statements after a write has taken the event go into a new one (not into the written row).
    for (let i = runs + 1; i <= runs + 5; i++) {
      await s.run({ id: `r${i}`, sql: `select id from customers where id = ${i}` });
    }
    await s.close('test over', 'client_closed');
    const events = await eventsOf(s.id);
    const statementEvents = events.filter((e) => e.kind === 'sql.statements');
    const listed = statementEvents.flatMap((e) => e.data.statements as Record<string, unknown>[]);
    expect(listed.map((st) => st.runId)).toEqual(Array.from({ length: runs + 5 }, (_, i) => `r${i + 1}`));
    expect(listed[4]).toMatchObject({
      statement: 'select id from customers where id = 5',
      kind: 'SelectStmt',
      verdict: 'allow',
      outcome: 'ok',
      command: 'SELECT',
      rowCount: 1,
      truncated: false,
    });
    // While the lock was held, one write waited with what it had taken and everything after it
    // joined one event: at most two events for the first thirty statements, then the last five.
    expect(statementEvents.length).toBeLessThanOrEqual(2 + 5);
    const firstThirty = statementEvents.filter((e) =>
      (e.data.statements as { runId: string }[]).some((st) => Number(st.runId.slice(1)) <= runs),
    );
    expect(firstThirty.length).toBeLessThanOrEqual(2);
    expect(events.map((e) => e.kind)).toEqual([
      'sql.session.started',
      ...statementEvents.map(() => 'sql.statements'),
      'sql.session.ended',
    ]);
    expect(events.at(-1)?.data).toMatchObject({ statements: runs + 5 });
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('keeps the order of a session: a refusal closes the open event, later statements start a new one', async () => {
    const frames: SqlServerMessage[] = [];
    const s = await session(frames);
    await s.run({ id: 'a', sql: 'select 1' });
    await s.run({ id: 'b', sql: 'select 2' });
    await s.run({ id: 'x', sql: "alter system set work_mem = '1MB'" });
    expect(frames.at(-1)).toMatchObject({ type: 'blocked', id: 'x', rule: 'alter-system' });
    await s.run({ id: 'c', sql: 'select 3' });
    await s.run({ id: 'e', sql: 'select 1/0' });
    expect(frames.at(-1)).toMatchObject({ type: 'error', id: 'e', code: '22012' });
    await s.close('test over', 'client_closed');
    const events = (await eventsOf(s.id)).map((e) => ({
      kind: e.kind,
      runs:
        e.kind === 'sql.statements' ? (e.data.statements as { runId: string }[]).map((st) => st.runId) : [],
    }));
    // a and b may or may not share an event (a write may fall between them); the order may not change.
    const flat = events.flatMap((e) =>
      e.kind === 'sql.statements' ? e.runs : [e.kind === 'sql.blocked' ? 'blocked' : e.kind],
    );
    expect(flat).toEqual(['sql.session.started', 'a', 'b', 'blocked', 'c', 'e', 'sql.session.ended']);
    const failed = (await eventsOf(s.id)).find(
      (e) => e.kind === 'sql.statements' && (e.data.statements as { runId: string }[])[0]?.runId === 'e',
    );
    // The failed statement has an event of its own, with PostgreSQL's SQLSTATE.
    expect(failed?.data.statements).toEqual([
      expect.objectContaining({ runId: 'e', outcome: 'error', sqlstate: '22012', rowCount: null }),
    ]);
  });

  it('closes the session when its statements cannot be written to the ledger (fail closed)', async () => {
    const broken: Ledger = {
      ...ledger,
      enqueue: (event, opts) =>
        event.kind === 'sql.statements'
          ? Promise.reject(new Error('the store is unreachable'))
          : ledger.enqueue(event, opts),
    };
    const frames: SqlServerMessage[] = [];
    const s = await session(frames, broken);
    await s.run({ id: 'a', sql: 'select 1' });
    await expect.poll(() => frames.find((f) => f.type === 'closed')).toBeDefined();
    expect(frames.find((f) => f.type === 'closed')).toMatchObject({
      code: 'error',
      reason: 'the audit ledger cannot be written: the session is closed',
    });
    await s.run({ id: 'b', sql: 'select 2' });
    expect(frames.at(-1)).toMatchObject({ type: 'error', id: 'b', code: 'session_closed' });
    expect(frames.some((f) => f.type === 'complete' && f.id === 'b')).toBe(false);
  });
});
