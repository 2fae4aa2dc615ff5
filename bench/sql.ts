/**
 * SQL through the gateway vs a direct PostgreSQL connection (issue 5's goals): `npm run bench:sql`.
 *
 * One embedded PostgreSQL (devstack, demo `customers` seeded, plus a 100,000-row × 10-column
 * `bench_wide` table with e-mails and card numbers, seeded deterministically) and one in-process
 * test gateway (masking on, SQL recording on, as the gateway runs by default). Every client runs in
 * a driver child process (support.ts), so this process holds only the gateway:
 *  - point SELECT (`select * from customers where id = <literal>`) at concurrency 1 and 8 for a
 *    fixed time: direct `pg` (one connection per client) vs the SQL channel (one channel per
 *    client, `read` grant); qps, p50, p99 (goal: throughput ≥ 0.7× direct);
 *  - the 100,000-row result with masking on: the channel sends at most 10,000 rows per statement
 *    (the route's cap; `run.maxRows` can only lower it), so the whole table is read as 10 keyset
 *    pages of 10,000 (`where id > k order by id limit 10000`), the same pages directly; plus one
 *    direct `select *` of all 100,000 rows for reference; rows/s and ratio;
 *  - where one point select's time goes (concurrency 1): the gateway's statement protocol
 *    (portal-reader.ts) run directly, timers around the gateway's own target exchanges, how far
 *    the queued ledger events run behind, one ledger append alone and in groups,
 *    (installed from outside, see instrument()), the guard's parse cost alone;
 *  - masking throughput: the gateway's masker (default config) over the 1,000,000 cells of
 *    bench_wide, cells per CPU-second of one core (goal ≥ 2M), and the frame encoding around it.
 * Each point-select phase also reads the whole machine's CPU (/proc/stat): the machine CPU per
 * statement on each path, and what 0.7× of direct leaves the gateway path on this machine (CPU where
 * direct kept the CPUs busy, the round trip where it did not; see pointBudget()).
 * Prints tables with ratios and writes bench/results/sql-<ts>.json. No assertions.
 *
 * Knobs: SALLYPORT_BENCH_SECONDS (10 per point-select phase), SALLYPORT_BENCH_WIDE_RUNS (2),
 * SALLYPORT_BENCH_ONLY=point (the point-select phases alone), SALLYPORT_BENCH_STORE=postgres (the gateway's own store in a database on the same PostgreSQL
 * instead of PGlite), SALLYPORT_BENCH_PROFILE=1 (CPU profiles of the gateway, see support.ts).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { cpus } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { RunningPostgres } from '@sallyport/gateway-server/devstack';
import type { TestGateway } from '@sallyport/gateway-server/rig';
import type { SqlServerMessage } from '@sallyport/protocol';
import pg from 'pg';
import WebSocket from 'ws';
import {
  type Driver,
  envNumber,
  fmt,
  fmtInt,
  hardDeadline,
  isDriver,
  log,
  machineLine,
  mainThreadCpuSeconds,
  mulberry32,
  printTable,
  profiled,
  ratio,
  type Summary,
  serveDriver,
  startDriver,
  summarize,
  within,
  withLuhn,
  withMachineCpu,
  writeResult,
} from './support';

const SECONDS = envNumber('SALLYPORT_BENCH_SECONDS', 10);
const WARMUP_MS = 1500;
const WIDE_ROWS = 100_000;
const PAGE_ROWS = 10_000;
const WIDE_RUNS = envNumber('SALLYPORT_BENCH_WIDE_RUNS', 2);
const MASK_PASSES = 3;
const TARGET = 'demo';
const REASON = 'benchmark: measuring SQL through the gateway';
const storeOnPostgres = process.env.SALLYPORT_BENCH_STORE === 'postgres';
/** SALLYPORT_BENCH_ONLY=point: the point-select phases alone (a quick loop while tuning). */
const POINT_ONLY = process.env.SALLYPORT_BENCH_ONLY === 'point';

const pointSql = (id: number) => `select * from customers where id = ${id}`;
const pageSql = (page: number) =>
  `select * from bench_wide where id > ${page * PAGE_ROWS} order by id limit ${PAGE_ROWS}`;
const PAGES = Array.from({ length: WIDE_ROWS / PAGE_ROWS }, (_, i) => pageSql(i));

/** pg parses nothing: every value stays PostgreSQL's text, as the gateway reads it. */
const RAW_TEXT = {
  getTypeParser: (() => (value: string) => value) as unknown as typeof pg.types.getTypeParser,
};

// =====================================================================================
// Driver side (the user's machine): direct pg clients and gateway SQL channels.
// =====================================================================================

interface PgInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

interface GatewayInfo {
  url: string;
  token: string;
  grantId: string;
}

interface PointResult {
  queries: number;
  seconds: number;
  latency: Summary;
  errors: number;
  firstError?: string;
  /** CPU of the client process (the driver) in the measured phase, per statement. */
  clientCpuMsPerQuery: number;
}

interface PointPhase {
  direct: PointResult;
  relay: PointResult;
  gateway: PointResult;
  gatewayCpuSeconds: number;
  /** Of gatewayCpuSeconds, the event loop's thread (undefined where /proc is missing). */
  gatewayMainThreadCpuSeconds: number | undefined;
  /** CPUs the whole machine kept busy in each phase (client, gateway, database, everything else). */
  machineBusyCores: { direct?: number; relay?: number; gateway?: number };
}

interface WideResult {
  rows: number;
  maskedCells: number;
  truncated: number;
  seconds: number;
  perRunMs: number[];
}

async function connectPg(p: PgInfo): Promise<pg.Client> {
  const c = new pg.Client({ ...p, connectionTimeoutMillis: 10_000 });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Every client runs `one` back to back until the deadline; warm-up first, not counted. */
async function closedLoop(
  clients: number,
  one: (client: number, seq: number) => Promise<void>,
  warmupMs: number,
  durationMs: number,
): Promise<PointResult> {
  const phase = async (ms: number) => {
    const latencies: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    const deadline = performance.now() + ms;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let seq = 0; performance.now() < deadline; seq++) {
          const s = performance.now();
          try {
            await one(c, seq);
            latencies.push(performance.now() - s);
          } catch (err) {
            errors++;
            firstError ??= (err as Error).message;
            if (errors > 100) throw err;
          }
        }
      }),
    );
    return { latencies, errors, firstError, seconds: (performance.now() - t0) / 1000 };
  };
  await phase(warmupMs);
  const c0 = process.cpuUsage();
  const r = await phase(durationMs);
  const c = process.cpuUsage(c0);
  return {
    queries: r.latencies.length,
    seconds: r.seconds,
    latency: summarize(r.latencies),
    errors: r.errors,
    clientCpuMsPerQuery: (c.user + c.system) / 1000 / Math.max(1, r.latencies.length),
    ...(r.firstError ? { firstError: r.firstError } : {}),
  };
}

const idOf = (client: number, seq: number) => ((client * 7 + seq) % 50) + 1;

async function directPoint(a: { pg: PgInfo; clients: number; warmupMs: number; durationMs: number }) {
  const cs = await Promise.all(Array.from({ length: a.clients }, () => connectPg(a.pg)));
  try {
    return await closedLoop(
      a.clients,
      async (c, seq) => {
        const r = await cs[c]!.query(pointSql(idOf(c, seq)));
        if (r.rows.length !== 1) throw new Error(`expected 1 row, got ${r.rows.length}`);
      },
      a.warmupMs,
      a.durationMs,
    );
  } finally {
    await Promise.all(cs.map((c) => c.end().catch(() => {})));
  }
}

/**
 * What the gateway sends PostgreSQL for one SELECT in a read session (protocols/postgres/session.ts):
 * on a warm session, Parse, Bind, Describe, Execute(cap + 1) and Sync in one write (portal-reader.ts,
 * one-shot mode) —
 * run directly, to separate the protocol's round trips from the gateway's own work.
 */
async function directPortalPoint(a: { pg: PgInfo; clients: number; warmupMs: number; durationMs: number }) {
  const { PortalReader } = await import('../gateway-server/src/protocols/postgres/portal-reader');
  const cs = await Promise.all(Array.from({ length: a.clients }, () => connectPg(a.pg)));
  try {
    return await closedLoop(
      a.clients,
      async (c, seq) => {
        const reader = new PortalReader(pointSql(idOf(c, seq)), 500, { maxRows: 10_001 });
        cs[c]!.query(reader as unknown as pg.Submittable);
        const page = await reader.next();
        if (page.rows.length !== 1) throw new Error(`expected 1 row, got ${page.rows.length}`);
      },
      a.warmupMs,
      a.durationMs,
    );
  } finally {
    await Promise.all(cs.map((c) => c.end().catch(() => {})));
  }
}

interface RunOutcome {
  rows: number;
  masked: number;
  truncated: boolean;
  end: Extract<SqlServerMessage, { type: 'complete' | 'error' | 'blocked' | 'review' | 'cancelled' }>;
}

/** One SQL channel (`/api/sql`), opened under a grant; runs one batch at a time. */
class SqlChannel {
  private seq = 0;
  private current:
    | { id: string; rows: number; masked: number; truncated: boolean; resolve: (o: RunOutcome) => void }
    | undefined;
  private failCurrent: ((err: Error) => void) | undefined;

  private constructor(private readonly ws: WebSocket) {}

  static async open(gw: GatewayInfo): Promise<SqlChannel> {
    const ws = new WebSocket(`${gw.url.replace(/^http/, 'ws')}/api/sql`, {
      headers: { authorization: `Bearer ${gw.token}` },
    });
    const ch = new SqlChannel(ws);
    ws.on('error', () => {});
    const ready = new Promise<void>((resolve, reject) => {
      ws.on('message', (raw: Buffer) => {
        const f = JSON.parse(raw.toString('utf8')) as SqlServerMessage;
        if (f.type === 'ready') return resolve();
        if (f.type === 'error' && !f.id) return reject(new Error(`open refused: ${f.code}: ${f.message}`));
        ch.frame(f);
      });
      ws.once('close', (code, reason) => {
        const err = new Error(`sql channel closed (${code} ${String(reason)})`);
        reject(err);
        ch.failCurrent?.(err);
      });
    });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'open', targetId: TARGET, grantId: gw.grantId })));
    await within(ready, 30_000, 'sql channel ready');
    return ch;
  }

  private frame(f: SqlServerMessage): void {
    const cur = this.current;
    if (!cur || !('id' in f) || f.id !== cur.id) return;
    if (f.type === 'rows') {
      cur.rows += f.rows.length;
      cur.masked += f.masked.length;
    } else if (f.type === 'done') {
      if (f.truncated) cur.truncated = true;
    } else if (f.type !== 'columns' && f.type !== 'notice') {
      this.current = undefined;
      cur.resolve({ rows: cur.rows, masked: cur.masked, truncated: cur.truncated, end: f });
    }
  }

  run(sql: string): Promise<RunOutcome> {
    const id = `r${++this.seq}`;
    const outcome = new Promise<RunOutcome>((resolve, reject) => {
      this.current = { id, rows: 0, masked: 0, truncated: false, resolve };
      this.failCurrent = reject;
    });
    this.ws.send(JSON.stringify({ type: 'run', id, sql }));
    return within(outcome, 120_000, `run ${id}`);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === this.ws.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.close();
    await within(closed, 10_000, 'sql channel close').catch(() => this.ws.terminate());
  }
}

async function gatewayPoint(a: { gw: GatewayInfo; clients: number; warmupMs: number; durationMs: number }) {
  const chs = await Promise.all(Array.from({ length: a.clients }, () => SqlChannel.open(a.gw)));
  try {
    return await closedLoop(
      a.clients,
      async (c, seq) => {
        const r = await chs[c]!.run(pointSql(idOf(c, seq)));
        if (r.end.type !== 'complete' || r.rows !== 1)
          throw new Error(`expected 1 row and complete, got ${r.rows} rows and ${JSON.stringify(r.end)}`);
      },
      a.warmupMs,
      a.durationMs,
    );
  } finally {
    await Promise.all(chs.map((c) => c.close()));
  }
}

async function repeated(
  runs: number,
  queries: string[],
  one: (sql: string) => Promise<Omit<WideResult, 'seconds' | 'perRunMs'>>,
) {
  const total: WideResult = { rows: 0, maskedCells: 0, truncated: 0, seconds: 0, perRunMs: [] };
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    for (const sql of queries) {
      const o = await one(sql);
      total.rows += o.rows;
      total.maskedCells += o.maskedCells;
      total.truncated += o.truncated;
    }
    total.perRunMs.push(performance.now() - t0);
  }
  total.seconds = total.perRunMs.reduce((a, b) => a + b, 0) / 1000;
  return total;
}

async function directWide(a: { pg: PgInfo; queries: string[]; runs: number }): Promise<WideResult> {
  const c = await connectPg(a.pg);
  try {
    await c.query({ text: a.queries[0]!, rowMode: 'array', types: RAW_TEXT }); // warm-up
    return await repeated(a.runs, a.queries, async (sql) => {
      const r = await c.query({ text: sql, rowMode: 'array', types: RAW_TEXT });
      return { rows: r.rows.length, maskedCells: 0, truncated: 0 };
    });
  } finally {
    await c.end().catch(() => {});
  }
}

async function gatewayWide(a: { gw: GatewayInfo; queries: string[]; runs: number }): Promise<WideResult> {
  const ch = await SqlChannel.open(a.gw);
  try {
    await ch.run(a.queries[0]!); // warm-up
    return await repeated(a.runs, a.queries, async (sql) => {
      const r = await ch.run(sql);
      if (r.end.type !== 'complete') throw new Error(`run ended with ${JSON.stringify(r.end)}`);
      return { rows: r.rows, maskedCells: r.masked, truncated: r.truncated ? 1 : 0 };
    });
  } finally {
    await ch.close();
  }
}

// =====================================================================================
// Benchmark side (holds the gateway and the database).
// =====================================================================================

const WIDE_COLUMNS = [
  'id',
  'full_name',
  'email',
  'card_number',
  'phone',
  'country',
  'amount',
  'status',
  'note',
  'created_at',
] as const;

/** 100,000 deterministic rows (mulberry32 seed 5), inserted 10,000 at a time through unnest(). */
async function seedWide(admin: pg.Client): Promise<void> {
  await admin.query(`create table bench_wide (
    id int primary key,
    full_name text not null,
    email text not null,
    card_number text not null,
    phone text not null,
    country char(2) not null,
    amount numeric(12,2) not null,
    status text not null,
    note text,
    created_at timestamptz not null
  )`);
  const rnd = mulberry32(5);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const digits = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += String(Math.floor(rnd() * 10));
    return s;
  };
  const FIRST = [
    'Alice',
    'Bruno',
    'Chiara',
    'Dmitri',
    'Emma',
    'Farid',
    'Grace',
    'Hiroshi',
    'Ingrid',
    'Jamal',
  ];
  const LAST = ['Andersen', 'Becker', 'Costa', 'Dubois', 'Eriksson', 'Fischer', 'Haddad', 'Jensen', 'Novak'];
  const CARDS = [
    { prefix: '4111', length: 16 },
    { prefix: '5555', length: 16 },
    { prefix: '3782', length: 15 },
    { prefix: '6011', length: 16 },
  ];
  const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'NL', 'SE', 'ES', 'IT', 'PL', 'JP'];
  const STATUS = ['active', 'pending', 'suspended', 'closed'];
  const NOTES = ['prefers e-mail', 'VIP', 'call after 5pm', 'n/a', 'moved from the old CRM'];
  const base = Date.UTC(2024, 0, 1);
  for (let from = 1; from <= WIDE_ROWS; from += 10_000) {
    const cols: unknown[][] = WIDE_COLUMNS.map(() => []);
    for (let id = from; id < from + 10_000; id++) {
      const first = pick(FIRST);
      const last = pick(LAST);
      const card = pick(CARDS);
      const email = `${first}.${last}${id}@example.com`.toLowerCase();
      const row = [
        id,
        `${first} ${last}`,
        email,
        withLuhn(card.prefix + digits(card.length - card.prefix.length - 1)),
        `+1 555-${digits(3)}-${digits(4)}`,
        pick(COUNTRIES),
        `${Math.floor(rnd() * 100_000)}.${digits(2)}`,
        pick(STATUS),
        rnd() < 0.2 ? `backup contact ${first.toLowerCase()}@example.org` : pick(NOTES),
        new Date(base + Math.floor(rnd() * 365 * 86_400_000)).toISOString(),
      ];
      for (let i = 0; i < row.length; i++) cols[i]!.push(row[i]);
    }
    await admin.query(
      `insert into bench_wide select * from unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[],
         $6::text[], $7::numeric[], $8::text[], $9::text[], $10::timestamptz[])`,
      cols,
    );
  }
  await admin.query('analyze bench_wide');
}

/**
 * The ceiling of any in-path process on this machine: a Node TCP relay in the gateway's process
 * that only copies bytes between the driver's pg client and PostgreSQL (no parsing, masking,
 * recording or ledger). The gateway's channel can at best approach it.
 */
async function startRelay(host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The gateway's masker (default masking config) over every cell of bench_wide, one core. */
async function maskingThroughput(admin: pg.Client) {
  const { createMasker } = await import('../gateway-server/src/masking/index');
  const masker = createMasker({}, randomBytes(32));
  const res = await admin.query({
    text: 'select * from bench_wide order by id',
    rowMode: 'array',
    types: RAW_TEXT,
  });
  const rows = res.rows as (string | null)[][];
  const refs = WIDE_COLUMNS.map((name) => ({ schema: 'public', table: 'bench_wide', name }));
  const cells = rows.length * refs.length;
  const maskAll = () => {
    let masked = 0;
    for (const row of rows) {
      for (let c = 0; c < row.length; c++) if (masker.maskCell(row[c]!, refs[c]).masked) masked++;
    }
    return masked;
  };
  /** What the gateway does per batch of 500 rows: mask every cell, then JSON-encode the frame. */
  const frames = () => {
    let chars = 0;
    for (let i = 0; i < rows.length; i += 500) {
      const masked: [number, number][] = [];
      const batch = rows.slice(i, i + 500).map((row, r) =>
        row.map((v, c) => {
          const out = masker.maskCell(v, refs[c]);
          if (out.masked) masked.push([r, c]);
          return out.value;
        }),
      );
      chars += JSON.stringify({ type: 'rows', id: 'r1', statementIndex: 0, rows: batch, masked }).length;
    }
    return chars;
  };
  const timed = <T>(fn: () => T): { value: T; cpu: number; wall: number } => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const value = fn();
    const c = process.cpuUsage(c0);
    return { value, cpu: (c.user + c.system) / 1e6, wall: (performance.now() - t0) / 1000 };
  };
  maskAll(); // warm-up
  let cpu = 0;
  let wall = 0;
  let masked = 0;
  for (let i = 0; i < MASK_PASSES; i++) {
    const r = timed(maskAll);
    cpu += r.cpu;
    wall += r.wall;
    masked = r.value;
  }
  const f = timed(frames);
  return {
    cells,
    maskedCells: masked,
    passes: MASK_PASSES,
    cellsPerCpuSecond: (cells * MASK_PASSES) / cpu,
    cellsPerWallSecond: (cells * MASK_PASSES) / wall,
    maskAndEncodeCellsPerCpuSecond: cells / f.cpu,
    frameChars: f.value,
  };
}

/**
 * Timers around the gateway's own calls, installed from outside for one phase (no gateway code is
 * changed): every pg.Client query on the target database (the gateway's connections; the
 * benchmark's own admin connection is idle meanwhile) and every ledger append, plus the event
 * loop's delay. The awaited times include any time the reply waited for a blocked event loop.
 */
function instrument(t: TestGateway, targetDatabase: string) {
  const pgTimes: number[] = [];
  const ledgerTimes: number[] = [];
  const ledger = t.gw.ledger;
  let statementsLogged = 0;
  const enqueue = ledger.enqueue;
  // Statements' ledger events are queued, not awaited: what is measured is how far behind they
  // run, from the first statement of an event (a session's statements share one per write).
  ledger.enqueue = function (this: typeof ledger, ...args: Parameters<typeof enqueue>) {
    const t0 = performance.now();
    const p = enqueue.apply(this, args);
    const listed = args[0].data?.statements;
    const done = () => {
      ledgerTimes.push(performance.now() - t0);
      statementsLogged += Array.isArray(listed) ? listed.length : 0;
    };
    p.then(done, done);
    return p;
  };
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const query = proto.query;
  proto.query = function (this: { database?: string }, ...args: unknown[]) {
    const r = query.apply(this, args);
    // Only the gateway's connections to the target (with SALLYPORT_BENCH_STORE=postgres the store's are not).
    if (this.database !== targetDatabase) return r;
    const t0 = performance.now();
    const settles = (r as { finished?: Promise<unknown> } | undefined)?.finished ?? r;
    if (settles && typeof (settles as Promise<unknown>).then === 'function') {
      const done = () => void pgTimes.push(performance.now() - t0);
      (settles as Promise<unknown>).then(done, done);
    }
    return r;
  };
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  return {
    stop() {
      loop.disable();
      ledger.enqueue = enqueue;
      proto.query = query;
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      return {
        pgQueries: pgTimes.length,
        pgMs: sum(pgTimes),
        ledgerAppends: ledgerTimes.length,
        statementsLogged,
        ledgerMs: sum(ledgerTimes),
        ledgerAppend: summarize(ledgerTimes),
        loopDelayP99Ms: loop.percentile(99) / 1e6,
        loopDelayMaxMs: loop.max / 1e6,
      };
    },
  };
}

/** Per-statement costs inside the gateway process, measured in isolation (sequentially). */
async function gatewayCosts(t: TestGateway) {
  const { analyzeBatch, evaluateBatch, initSqlParser, DEFAULT_SQL_RULES } = await import(
    '../gateway-server/src/protocols/postgres/guard'
  );
  const { READ_ONLY_SQL_RULES } = await import('../gateway-server/src/protocols/postgres/session');
  await initSqlParser();
  const rules = [...READ_ONLY_SQL_RULES, ...DEFAULT_SQL_RULES];
  const sqlText = pointSql(17);
  const guardOnce = (text: string) => {
    const a = analyzeBatch(text);
    evaluateBatch(a, rules);
  };
  for (let i = 0; i < 200; i++) guardOnce(sqlText);
  // The same text again (the analysis cache answers), and texts never seen (the parser runs).
  const guard: number[] = [];
  const guardFresh: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now();
    guardOnce(sqlText);
    guard.push(performance.now() - t0);
    const fresh = pointSql(1_000_000 + i);
    const t1 = performance.now();
    guardOnce(fresh);
    guardFresh.push(performance.now() - t1);
  }
  // One `sql.statements` audit event listing one statement, shaped like the session's.
  const event = (i: number) => ({
    kind: 'sql.statements',
    actor: 'alice',
    actorKind: 'user' as const,
    subject: 'alice',
    targetId: TARGET,
    data: {
      sessionId: '00000000-0000-4000-8000-000000000000',
      grantId: 'bench',
      statements: [
        {
          runId: `probe${i}`,
          statementIndex: 0,
          statement: sqlText,
          kind: 'SelectStmt',
          verdict: 'allow',
          outcome: 'ok',
          command: 'SELECT',
          rowCount: 1,
          truncated: false,
          durationMs: 1.2,
        },
      ],
      probe: 'bench/sql.ts: cost of one ledger append',
    },
  });
  for (let i = 0; i < 20; i++) await t.gw.ledger.append(event(i));
  const ledger: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    await t.gw.ledger.append(event(i));
    ledger.push(performance.now() - t0);
  }
  const c = process.cpuUsage(c0);
  // The same events written in groups of 25 (what the session's queue does under load).
  const g0 = process.cpuUsage();
  const groups = 12;
  for (let i = 0; i < groups; i++)
    await t.gw.ledger.appendMany(Array.from({ length: 25 }, (_, k) => event(k)));
  const g = process.cpuUsage(g0);
  return {
    guard: summarize(guard),
    guardFresh: summarize(guardFresh),
    ledgerAppend: summarize(ledger),
    ledgerAppendCpuMs: (c.user + c.system) / 1000 / ledger.length,
    ledgerGroupedCpuMs: (g.user + g.system) / 1000 / (groups * 25),
  };
}

/** The point-select table and the gateway's CPU per statement. */
function reportPoint(point: Record<string, PointPhase>): void {
  console.log(
    `Point SELECT (select * from customers where id = <literal>), ${SECONDS} s per row, closed loop`,
  );
  const pointRows: string[][] = [];
  for (const [k, v] of Object.entries(point)) {
    const qps = (r: PointResult) => r.queries / r.seconds;
    const dq = qps(v.direct);
    const gq = qps(v.gateway);
    pointRows.push([
      `direct pg, concurrency ${k.slice(1)}`,
      fmtInt(dq),
      fmt(v.direct.latency.p50, 3),
      fmt(v.direct.latency.p99, 3),
      '1.00×',
      '',
      '',
    ]);
    const rq = qps(v.relay);
    pointRows.push([
      `bare TCP relay, concurrency ${k.slice(1)}`,
      fmtInt(rq),
      fmt(v.relay.latency.p50, 3),
      fmt(v.relay.latency.p99, 3),
      ratio(rq / dq),
      ratio(v.relay.latency.p50 / v.direct.latency.p50),
      '',
    ]);
    pointRows.push([
      `gateway channel, concurrency ${k.slice(1)}`,
      fmtInt(gq),
      fmt(v.gateway.latency.p50, 3),
      fmt(v.gateway.latency.p99, 3),
      ratio(gq / dq),
      ratio(v.gateway.latency.p50 / v.direct.latency.p50),
      `≥ 0.70× ${gq / dq >= 0.7 ? 'MET' : 'MISSED'}`,
    ]);
  }
  printTable(['path', 'qps', 'p50 ms', 'p99 ms', 'qps ratio', 'p50 ratio', 'goal'], pointRows);
  for (const [k, v] of Object.entries(point)) {
    const errs = v.direct.errors + v.gateway.errors;
    console.log(
      `concurrency ${k.slice(1)}: gateway process CPU ${fmt(v.gatewayCpuSeconds)} s for ${fmtInt(v.gateway.queries)} statements ` +
        `(${fmt((1000 * v.gatewayCpuSeconds) / Math.max(1, v.gateway.queries), 3)} ms CPU each, incl. warm-up` +
        (v.gatewayMainThreadCpuSeconds !== undefined
          ? `; event-loop thread ${fmt((1000 * v.gatewayMainThreadCpuSeconds) / Math.max(1, v.gateway.queries), 3)} ms, ` +
            `other threads (store worker, libuv, GC) ${fmt((1000 * (v.gatewayCpuSeconds - v.gatewayMainThreadCpuSeconds)) / Math.max(1, v.gateway.queries), 3)} ms)`
          : ')') +
        (errs ? `; errors: ${errs} (${v.gateway.firstError ?? v.direct.firstError})` : ''),
    );
    console.log(
      `concurrency ${k.slice(1)}: client process CPU per statement: direct pg ${fmt(v.direct.clientCpuMsPerQuery, 3)} ms, ` +
        `through the relay ${fmt(v.relay.clientCpuMsPerQuery, 3)} ms, gateway channel (WebSocket, JSON) ${fmt(v.gateway.clientCpuMsPerQuery, 3)} ms`,
    );
    const budget = pointBudget(v);
    if (budget) console.log(`concurrency ${k.slice(1)}: ${budget}`);
  }
}

/**
 * What 0.7× of direct leaves the gateway path on this machine, where client, gateway and database
 * share the CPUs: the whole machine's CPU per statement on each path (busy CPUs / statements per
 * second) against what 0.7× of direct's rate allows; and, where the machine was not busy (one client
 * is bound by round trips, not CPU), the round trip 0.7× allows against the bare relay's.
 */
function pointBudget(v: PointPhase): string | undefined {
  const qps = (r: PointResult) => r.queries / r.seconds;
  const { direct, relay, gateway } = v.machineBusyCores;
  if (direct === undefined || relay === undefined || gateway === undefined) return undefined;
  const cores = cpus().length;
  const target = 0.7 * qps(v.direct);
  const perStatement = (busy: number, r: PointResult) => fmt((1000 * busy) / qps(r), 3);
  const machine =
    `the whole machine (${cores} CPUs) kept ${fmt(direct)} / ${fmt(relay)} / ${fmt(gateway)} CPUs busy ` +
    `(direct / relay / gateway): ${perStatement(direct, v.direct)} / ${perStatement(relay, v.relay)} / ${perStatement(gateway, v.gateway)} ms of machine CPU per statement`;
  if (direct >= 0.8 * cores) {
    return (
      `${machine}. Direct pg used the CPUs nearly whole, so 0.70× (${fmtInt(target)} qps) allows the gateway path at most ` +
      `${fmt((1000 * cores) / target, 3)} ms of machine CPU per statement, client, gateway and database together`
    );
  }
  return (
    `${machine}. The machine was not the limit here, round trips were: 0.70× (${fmtInt(target)} qps) allows a mean round trip ` +
    `of ${fmt(1000 / target, 3)} ms; the bare relay's alone is ${fmt(1000 / qps(v.relay), 3)} ms, the gateway's ${fmt(1000 / qps(v.gateway), 3)} ms`
  );
}

async function main() {
  hardDeadline(30 * 60_000, 'bench:sql');
  const started = performance.now();
  let pgServer: RunningPostgres | undefined;
  let t: TestGateway | undefined;
  let driver: Driver | undefined;
  let admin: pg.Client | undefined;
  try {
    // Imported here, not at the top: the driver (this file in a child process) needs neither.
    const { startPostgres } = await import('@sallyport/gateway-server/devstack');
    const { startTestGateway } = await import('@sallyport/gateway-server/rig');
    log('starting PostgreSQL and seeding bench_wide (100,000 rows)');
    pgServer = await startPostgres({ seedDemo: true });
    const pgInfo: PgInfo = {
      host: pgServer.host,
      port: pgServer.port,
      user: pgServer.user,
      password: pgServer.password,
      database: pgServer.database,
    };
    admin = await connectPg(pgInfo);
    await seedWide(admin);
    let storeUrl: string | undefined;
    if (storeOnPostgres) {
      await admin.query('create database sallyport_bench_store');
      storeUrl = `postgres://${pgServer.user}:${encodeURIComponent(pgServer.password)}@${pgServer.host}:${pgServer.port}/sallyport_bench_store`;
    }
    t = await startTestGateway({
      config: {
        ...(storeUrl ? { database: { url: storeUrl } } : {}),
        targets: [
          {
            id: TARGET,
            kind: 'postgres',
            host: pgServer.host,
            port: pgServer.port,
            user: pgServer.user,
            database: pgServer.database,
            credential: { password: pgServer.password },
            labels: { env: 'bench' },
          },
        ],
        access: {
          rules: [
            {
              name: 'bench-sql-auto',
              requesters: { groups: ['developers'] },
              targets: { ids: [TARGET] },
              levels: ['read'],
              maxDuration: '8h',
              approval: 'auto',
            },
          ],
        },
      },
    });
    const token = await t.token('alice');
    const out = await t
      .client(token)
      .requestAccess({ targetId: TARGET, level: 'read', duration: '2h', reason: REASON });
    if (out.outcome !== 'granted') throw new Error(`expected an automatic grant, got ${out.outcome}`);
    const gw: GatewayInfo = { url: t.url, token, grantId: out.grant.id };
    driver = startDriver(new URL(import.meta.url));
    const d = driver;

    // ---------- point selects ----------
    const relay = await startRelay(pgInfo.host, pgInfo.port);
    const point: Record<string, PointPhase> = {};
    let inSitu: ReturnType<ReturnType<typeof instrument>['stop']> | undefined;
    for (const clients of [1, 8]) {
      log(`point select, concurrency ${clients}: ${SECONDS} s direct, ${SECONDS} s through the gateway`);
      const args = { clients, warmupMs: WARMUP_MS, durationMs: SECONDS * 1000 };
      const direct = await withMachineCpu(() =>
        d.call<PointResult>('direct-point', { pg: pgInfo, ...args }, SECONDS * 1000 + 120_000),
      );
      const relayed = await withMachineCpu(() =>
        d.call<PointResult>(
          'direct-point',
          { pg: { ...pgInfo, port: relay.port }, ...args },
          SECONDS * 1000 + 120_000,
        ),
      );
      const probe = clients === 1 ? instrument(t, pgInfo.database) : undefined;
      const c0 = process.cpuUsage();
      const m0 = mainThreadCpuSeconds();
      const gateway = await withMachineCpu(() =>
        profiled(`sql-point-c${clients}`, () =>
          d.call<PointResult>('gateway-point', { gw, ...args }, SECONDS * 1000 + 120_000),
        ),
      ).finally(() => {
        if (probe) inSitu = probe.stop();
      });
      const c = process.cpuUsage(c0);
      const m1 = mainThreadCpuSeconds();
      point[`c${clients}`] = {
        direct: direct.result,
        relay: relayed.result,
        gateway: gateway.result,
        gatewayCpuSeconds: (c.user + c.system) / 1e6,
        gatewayMainThreadCpuSeconds: m0 !== undefined && m1 !== undefined ? m1 - m0 : undefined,
        machineBusyCores: { direct: direct.busyCores, relay: relayed.busyCores, gateway: gateway.busyCores },
      };
    }
    await relay.close();
    if (POINT_ONLY) {
      console.log('');
      console.log(`Sallyport SQL benchmark (point selects only) — ${machineLine()}`);
      reportPoint(point);
      writeResult('sql', { bench: 'sql-point', at: new Date().toISOString(), machine: machineLine(), point });
      return;
    }

    // ---------- where the time of one point select goes ----------
    log(`breakdown: the gateway's statement protocol run directly (${SECONDS} s), guard and ledger costs`);
    const cursorPoint = await d.call<PointResult>(
      'direct-cursor-point',
      { pg: pgInfo, clients: 1, warmupMs: WARMUP_MS, durationMs: SECONDS * 1000 },
      SECONDS * 1000 + 120_000,
    );
    const costs = await gatewayCosts(t);

    // ---------- the 100,000-row result ----------
    log(
      `100,000 rows × 10 columns: 10 pages of ${PAGE_ROWS} × ${WIDE_RUNS} runs each way, then one direct select *`,
    );
    const directPages = await d.call<WideResult>(
      'direct-wide',
      { pg: pgInfo, queries: PAGES, runs: WIDE_RUNS },
      600_000,
    );
    const c0 = process.cpuUsage();
    const gatewayPages = await profiled('sql-wide-gateway', () =>
      d.call<WideResult>('gateway-wide', { gw, queries: PAGES, runs: WIDE_RUNS }, 900_000),
    );
    const wc = process.cpuUsage(c0);
    const wideGatewayCpu = (wc.user + wc.system) / 1e6;
    const directAll = await d.call<WideResult>(
      'direct-wide',
      { pg: pgInfo, queries: ['select * from bench_wide'], runs: WIDE_RUNS },
      600_000,
    );
    const gatewayAll = await d.call<WideResult>(
      'gateway-wide',
      { gw, queries: ['select * from bench_wide'], runs: 1 },
      600_000,
    );

    // ---------- masking throughput ----------
    log('masking throughput over the cells of bench_wide');
    const masking = await maskingThroughput(admin);

    // ---------- report ----------
    console.log('');
    console.log(`Sallyport SQL benchmark — ${machineLine()}`);
    console.log(
      `PostgreSQL: embedded (devstack) on ${pgServer.host}; gateway in-process (${storeOnPostgres ? 'store on PostgreSQL' : 'PGlite store'}, masking + recording on, read grant)`,
    );
    console.log('');
    reportPoint(point);

    const c1 = point.c1!;
    const gMean = c1.gateway.latency.mean;
    const share = (ms: number) => `${fmt((100 * ms) / gMean, 1)}%`;
    const ins = inSitu;
    // Statements counted from the `sql.statements` events that listed them.
    const statements = Math.max(1, ins?.statementsLogged ?? 1);
    const pgPer = (ins?.pgMs ?? Number.NaN) / statements;
    const ledgerLag = (ins?.ledgerMs ?? Number.NaN) / Math.max(1, ins?.ledgerAppends ?? 1);
    console.log('');
    console.log(
      'Where the time of one point select goes through the gateway (concurrency 1, mean ms per statement)',
    );
    printTable(
      ['component', 'alone', 'awaited in the gateway', 'share of gateway mean'],
      [
        ['the select, one round trip (direct pg)', fmt(c1.direct.latency.mean, 3), '', ''],
        [
          `the gateway's ${fmt((ins?.pgQueries ?? Number.NaN) / statements, 1)} target exchanges (Parse/Bind/Describe/Execute/Sync, one write)`,
          fmt(cursorPoint.latency.mean, 3),
          fmt(pgPer, 3),
          share(pgPer),
        ],
        [
          `ledger: one append alone, ${storeOnPostgres ? 'PostgreSQL' : 'PGlite'} store (${fmt(costs.ledgerAppendCpuMs, 2)} ms CPU; in groups of 25: ${fmt(costs.ledgerGroupedCpuMs, 3)} ms CPU per event)`,
          fmt(costs.ledgerAppend.mean, 3),
          'not awaited',
          '',
        ],
        [
          `ledger: how far an event runs behind its first statement (group commit, 50 ms window; ${fmt(statements / Math.max(1, ins?.ledgerAppends ?? 1), 1)} statements per event)`,
          '',
          fmt(ledgerLag, 1),
          '',
        ],
        [
          'guard: parse batch + rules, text seen before (cached)',
          fmt(costs.guard.mean, 3),
          '',
          share(costs.guard.mean),
        ],
        [
          'guard: parse batch + rules, new text',
          fmt(costs.guardFresh.mean, 3),
          '',
          share(costs.guardFresh.mean),
        ],
        ['gateway channel, end to end', '', fmt(gMean, 3), '100%'],
      ],
    );
    console.log(
      `(the gateway's protocol run directly gives ${fmtInt(cursorPoint.queries / cursorPoint.seconds)} qps at concurrency 1, ` +
        `${ratio(cursorPoint.queries / cursorPoint.seconds / (c1.direct.queries / c1.direct.seconds))} of the one-round-trip select; ` +
        `event-loop delay in the gateway during the phase: p99 ${fmt(ins?.loopDelayP99Ms ?? Number.NaN, 1)} ms, max ${fmt(ins?.loopDelayMaxMs ?? Number.NaN, 1)} ms)`,
    );

    console.log('');
    console.log(
      `100,000 rows × 10 columns (bench_wide; e-mails, card numbers), masking on. The channel's row cap is 10,000 per statement,`,
    );
    console.log(
      `so the table is read as 10 keyset pages of 10,000 rows (× ${WIDE_RUNS} runs) on both paths.`,
    );
    const rps = (r: WideResult) => r.rows / r.seconds;
    printTable(
      ['path', 'rows', 'masked cells', 'seconds', 'rows/s', 'ratio', 'goal'],
      [
        [
          'direct pg, 10 pages of 10,000',
          fmtInt(directPages.rows),
          '0',
          fmt(directPages.seconds),
          fmtInt(rps(directPages)),
          '1.00×',
          '',
        ],
        [
          'gateway channel, 10 pages of 10,000',
          fmtInt(gatewayPages.rows),
          fmtInt(gatewayPages.maskedCells),
          fmt(gatewayPages.seconds),
          fmtInt(rps(gatewayPages)),
          ratio(rps(gatewayPages) / rps(directPages)),
          '(none set)',
        ],
        [
          'direct pg, select * (100,000 at once)',
          fmtInt(directAll.rows),
          '0',
          fmt(directAll.seconds),
          fmtInt(rps(directAll)),
          ratio(rps(directAll) / rps(directPages)),
          '',
        ],
        [
          'gateway channel, select * (capped)',
          fmtInt(gatewayAll.rows),
          fmtInt(gatewayAll.maskedCells),
          fmt(gatewayAll.seconds),
          fmtInt(rps(gatewayAll)),
          ratio(rps(gatewayAll) / rps(directPages)),
          gatewayAll.truncated ? 'truncated at the cap' : '',
        ],
      ],
    );
    console.log(
      `gateway process CPU for the pages: ${fmt(wideGatewayCpu)} s — ${fmtInt((gatewayPages.rows * 10) / wideGatewayCpu)} cells per gateway CPU-second end to end`,
    );

    console.log('');
    console.log(
      `Masking throughput (the gateway's masker, default config, ${fmtInt(masking.cells)} cells of bench_wide, one core)`,
    );
    printTable(
      ['measure', 'cells/s', 'goal'],
      [
        [
          `maskCell, per CPU-second (${masking.passes} passes)`,
          fmtInt(masking.cellsPerCpuSecond),
          `≥ 2,000,000 ${masking.cellsPerCpuSecond >= 2e6 ? 'MET' : 'MISSED'}`,
        ],
        ['maskCell, per wall second', fmtInt(masking.cellsPerWallSecond), ''],
        [
          'maskCell + JSON frame encoding, per CPU-second',
          fmtInt(masking.maskAndEncodeCellsPerCpuSecond),
          '',
        ],
      ],
    );
    console.log(`${fmtInt(masking.maskedCells)} of ${fmtInt(masking.cells)} cells masked per pass`);

    const result = {
      bench: 'sql',
      at: new Date().toISOString(),
      machine: machineLine(),
      store: storeOnPostgres ? 'postgres' : 'pglite',
      secondsPerPhase: SECONDS,
      point: Object.fromEntries(
        Object.entries(point).map(([k, v]) => [
          k,
          {
            ...v,
            directQps: v.direct.queries / v.direct.seconds,
            gatewayQps: v.gateway.queries / v.gateway.seconds,
            relayQps: v.relay.queries / v.relay.seconds,
            relayRatio: v.relay.queries / v.relay.seconds / (v.direct.queries / v.direct.seconds),
            ratio: v.gateway.queries / v.gateway.seconds / (v.direct.queries / v.direct.seconds),
            goal: 0.7,
            met: v.gateway.queries / v.gateway.seconds / (v.direct.queries / v.direct.seconds) >= 0.7,
          },
        ]),
      ),
      breakdown: { cursorProtocolDirect: cursorPoint, ...costs, inGatewayConcurrency1: inSitu },
      wide: {
        rows: WIDE_ROWS,
        columns: WIDE_COLUMNS.length,
        rowCap: PAGE_ROWS,
        runs: WIDE_RUNS,
        directPages: { ...directPages, rowsPerS: rps(directPages) },
        gatewayPages: { ...gatewayPages, rowsPerS: rps(gatewayPages), gatewayCpuSeconds: wideGatewayCpu },
        directAll: { ...directAll, rowsPerS: rps(directAll) },
        gatewayAll: { ...gatewayAll, rowsPerS: rps(gatewayAll) },
        ratio: rps(gatewayPages) / rps(directPages),
      },
      masking: { ...masking, goalCellsPerS: 2e6, met: masking.cellsPerCpuSecond >= 2e6 },
      totalSeconds: (performance.now() - started) / 1000,
    };
    const file = writeResult('sql', result);
    console.log(`\nwritten ${file} (run took ${result.totalSeconds.toFixed(1)} s)`);
  } finally {
    await driver?.stop();
    await admin?.end().catch(() => {});
    await t?.stop();
    await pgServer?.stop();
  }
}

if (isDriver) {
  serveDriver({
    'direct-point': directPoint,
    'direct-cursor-point': directPortalPoint,
    'gateway-point': gatewayPoint,
    'direct-wide': directWide,
    'gateway-wide': gatewayWide,
  });
} else {
  await main();
}
