// The one-write statement path (portal-reader.ts, one-shot mode) against a real PostgreSQL:
// Parse/Bind/Describe/Execute(maxRows)/Sync in one write, flow control by pausing the socket,
// a catalogue lookup after unbounded(), the row cap, cancel mid-stream — and, through SqlSession,
// that a warm session uses it for a long result with a slow client and memory stays bounded.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { SqlServerMessage } from '@sallyport/protocol';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedger } from '../../src/audit';
import { type RunningPostgres, startPostgres } from '../../src/devstack';
import { PortalReader } from '../../src/protocols/postgres/portal-reader';
import { openStore, type Store } from '../../src/store/db';
import { openSqlSession } from '../rig/postgres';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let pgServer: RunningPostgres;
let store: Store;
const clients: pg.Client[] = [];
const BIG = 'select g, md5(g::text) from generate_series(1, 200000) g';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function client(): Promise<pg.Client> {
  const c = new pg.Client({
    host: pgServer.host,
    port: pgServer.port,
    user: pgServer.user,
    password: pgServer.password,
    database: pgServer.database,
  });
  c.on('error', () => {});
  await c.connect();
  clients.push(c);
  return c;
}

function oneShot(c: pg.Client, text: string, pageSize: number, maxRows: number): PortalReader {
  const reader = new PortalReader(text, pageSize, { maxRows });
  c.query(reader as unknown as pg.Submittable);
  return reader;
}

async function readAll(reader: PortalReader, pauseMs = 0) {
  let rows = 0;
  let pages = 0;
  let maxBuffered = 0;
  for (;;) {
    const page = await reader.next();
    rows += page.rows.length;
    pages++;
    maxBuffered = Math.max(maxBuffered, reader.bufferedRows);
    if (page.done) break;
    if (pauseMs) await sleep(pauseMs);
  }
  return { rows, pages, maxBuffered };
}

beforeAll(async () => {
  pgServer = await startPostgres({ seedDemo: true });
  store = await openStore({ memory: true });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  await store?.close();
  await pgServer?.stop();
});

describe('PortalReader in one-shot mode', () => {
  it('reads a result in pages from one write, and the connection is free afterwards', async () => {
    const c = await client();
    const reader = oneShot(c, 'select g from generate_series(1, 1234) g', 100, 100_000);
    const out = await readAll(reader);
    expect(out).toMatchObject({ rows: 1234 });
    expect(out.pages).toBeGreaterThanOrEqual(12);
    await reader.finished;
    expect(reader.command).toBe('SELECT');
    expect((await c.query('select 42 as n')).rows[0].n).toBe(42);
  });

  it('pauses PostgreSQL while the caller is slow: rows held stay near two pages', async () => {
    const c = await client();
    const reader = oneShot(c, BIG, 500, 300_000);
    const first = await reader.next();
    expect(first.rows).toHaveLength(500);
    await sleep(300); // the caller does not read: without the pause all 200 000 rows would pile up
    const held = reader.bufferedRows;
    const rest = await readAll(reader, 1);
    expect(first.rows.length + rest.rows).toBe(200_000);
    console.log(
      `one-shot flow control: ${held} rows held after a 300 ms stall, at most ${rest.maxBuffered} later`,
    );
    expect(held).toBeLessThan(5_000);
    expect(rest.maxBuffered).toBeLessThan(5_000);
    await reader.finished;
  });

  it('stops at maxRows: the last page is marked done and the Sync already sent ends the portal', async () => {
    const c = await client();
    const reader = oneShot(c, BIG, 500, 1_001);
    const out = await readAll(reader);
    expect(out.rows).toBe(1_001);
    await reader.finished;
    expect((await c.query('select 1 as n')).rows[0].n).toBe(1);
  });

  it('after unbounded(), a catalogue query queued behind the result runs (no deadlock) and no row is lost', async () => {
    const c = await client();
    const reader = oneShot(c, 'select g from generate_series(1, 20000) g', 100, 100_000);
    const first = await reader.next();
    reader.unbounded();
    const lookup = await c.query("select typname from pg_catalog.pg_type where oid = 'int4'::regtype");
    expect(lookup.rows[0].typname).toBe('int4');
    const rest = await readAll(reader);
    expect(first.rows.length + rest.rows).toBe(20_000);
  });

  it('close() mid-stream drops the rest and frees the connection', async () => {
    const c = await client();
    const reader = oneShot(c, BIG, 500, 300_000);
    await reader.next();
    reader.close();
    await reader.finished;
    expect((await c.query('select 7 as n')).rows[0].n).toBe(7);
  });

  it('reports an error from the one write, and the connection recovers', async () => {
    const c = await client();
    const reader = oneShot(c, 'select 1/0', 100, 1_000);
    await expect(reader.next()).rejects.toMatchObject({ code: '22012' });
    await expect(reader.finished).rejects.toMatchObject({ code: '22012' });
    expect((await c.query('select 3 as n')).rows[0].n).toBe(3);
  });
});

describe('SqlSession on a warm session', () => {
  async function session(frames: SqlServerMessage[], slowRowsMs = 0) {
    return openSqlSession(pgServer, {
      grantId: '00000000-0000-4000-8000-000000000001',
      ledger: createLedger(store),
      maxRows: 1_000_000,
      send: async (f) => {
        frames.push(f.type === 'rows' ? { ...f, rows: [] } : f); // keep counts, not values
        if (f.type === 'rows' && slowRowsMs) await sleep(slowRowsMs);
      },
    });
  }

  it('streams 200 000 rows to a slow client with bounded memory, then runs the next statement', async () => {
    const frames: SqlServerMessage[] = [];
    const s = await session(frames, 1);
    await s.run({ id: 'warm', sql: 'select * from customers where id = 1' }); // types and tables known
    let rows = 0;
    const counting = frames.length;
    gc();
    const heapBase = process.memoryUsage().heapUsed;
    let livePeak = 0;
    const sampler = setInterval(() => {
      livePeak = Math.max(livePeak, process.memoryUsage().heapUsed - heapBase);
    }, 20);
    try {
      await s.run({ id: 'big', sql: BIG });
    } finally {
      clearInterval(sampler);
    }
    for (const f of frames.slice(counting)) if (f.type === 'done') rows = f.rowCount ?? 0;
    expect(rows).toBe(200_000);
    expect(frames.at(-1)).toMatchObject({ type: 'complete', id: 'big' });
    console.log(
      `warm session, slow client: heap above the start at most +${(livePeak / 2 ** 20).toFixed(1)} MiB`,
    );
    // All 200 000 rows (md5 text) held at once would be well over 30 MiB.
    expect(livePeak).toBeLessThan(24 * 2 ** 20);
    await s.run({ id: 'after', sql: 'select count(*) from customers' });
    expect(frames.at(-1)).toMatchObject({ type: 'complete', id: 'after' });
    await s.close('test over', 'client_closed');
  });

  it('cancels a long one-shot result mid-stream; the session goes on', async () => {
    const frames: SqlServerMessage[] = [];
    const s = await session(frames, 2);
    await s.run({ id: 'warm', sql: 'select 1' });
    const running = s.run({ id: 'big', sql: BIG });
    await sleep(150);
    await s.cancel('big');
    await running;
    expect(frames.some((f) => f.type === 'cancelled' && 'id' in f && f.id === 'big')).toBe(true);
    await s.run({ id: 'next', sql: 'select 2' });
    expect(frames.at(-1)).toMatchObject({ type: 'complete', id: 'next' });
    await s.close('test over', 'client_closed');
  });

  it('a warm session describes a table it has not seen yet (catalogue lookup on the first statement that names it)', async () => {
    const frames: SqlServerMessage[] = [];
    const s = await session(frames);
    await s.run({ id: 'warm', sql: 'select 1' });
    await s.run({ id: 'cust', sql: 'select id, email from customers order by id limit 3' });
    const cols = frames.find((f) => f.type === 'columns' && f.id === 'cust');
    expect(cols).toMatchObject({
      columns: [
        { name: 'id', table: 'customers' },
        { name: 'email', table: 'customers' },
      ],
    });
    expect(frames.at(-1)).toMatchObject({ type: 'complete', id: 'cust' });
    await s.close('test over', 'client_closed');
  });
});
