// SQL session recordings against a real PostgreSQL: JSON lines of statements (verdict, rule,
// row count, the first N masked rows exactly as the client saw them), never a raw value, hashed at
// close with the hash in the ledger, served by the API and refused once tampered with; a session
// that cannot be recorded does not start, and one whose recording fails is closed.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type GatewayClient,
  SqlRecordingLine,
  type SqlRecordingLineOf,
  type SqlServerMessage,
} from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { main } from '../../src/cli/main';
import type { Io } from '../../src/cli/output';
import { demoCustomers, type RunningPostgres, startPostgres } from '../../src/devstack';
import type { ActiveRecording } from '../../src/recording';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { adminClient, postgresTarget } from '../rig/postgres';
import { recordingFetch, recordTranscript, registerSecret } from '../rig/transcript';

type Frame = SqlServerMessage;
type Line = SqlRecordingLine;
const TERMINAL = new Set(['complete', 'error', 'blocked', 'review', 'cancelled']);
/** recording.sqlResultRows for this gateway: small, so the cut is visible. */
const KEEP = 5;
const REASON = 'checking what the recorder keeps for ticket OPS-91';
const customers = demoCustomers();
const rawEmails = customers.map((c) => c.email);
const rawCards = customers.map((c) => c.cardNumber);

let pgServer: RunningPostgres;
let t: TestGateway;
let token: string;
let api: GatewayClient;
let recDir: string;
const sockets: SqlSocket[] = [];
let runSeq = 0;

interface SqlSocket {
  frames: Frame[];
  ready: Extract<Frame, { type: 'ready' }>;
  run(sql: string, id?: string): Promise<Frame[]>;
  start(sql: string, id: string): void;
  send(frame: unknown): void;
  waitFor(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** Opens `/api/sql` and a session; rejects with the refusal frame (as `frame`) when refused. */
async function openSql(grantId: string): Promise<SqlSocket> {
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
        reject(
          new Error(`frame not seen within ${timeoutMs} ms; got ${frames.map((f) => f.type).join(',')}`),
        );
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'open', targetId: 'demo', grantId }));
  const first = await waitFor((f) => f.type === 'ready' || f.type === 'error');
  if (first.type !== 'ready') {
    throw Object.assign(new Error(`open refused: ${JSON.stringify(first)}`), { frame: first, closed });
  }
  const send = (frame: unknown) => ws.send(JSON.stringify(frame));
  const socket: SqlSocket = {
    frames,
    ready: first,
    send,
    waitFor,
    closed,
    start: (sql, id) => send({ type: 'run', id, sql }),
    async run(sql, id = `r${++runSeq}`) {
      send({ type: 'run', id, sql });
      await waitFor((f) => TERMINAL.has(f.type) && 'id' in f && f.id === id);
      return frames.filter((f) => 'id' in f && f.id === id);
    },
    close: () => ws.close(),
  };
  sockets.push(socket);
  return socket;
}

async function grant(level: 'read' | 'write'): Promise<string> {
  const out = await api.requestAccess({ targetId: 'demo', level, duration: '1h', reason: REASON });
  if (out.outcome !== 'granted') throw new Error('expected an automatic grant');
  return out.grant.id;
}

/** The ledger event of `kind` about `sessionId`, once it is there. */
async function ledgerEvent(kind: string, sessionId: string) {
  for (let i = 0; i < 200; i++) {
    const hit = (await t.gw.ledger.list({ kind, limit: 10_000 })).find((e) => e.data.sessionId === sessionId);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${kind} for session ${sessionId}`);
}

/** Closes the socket and waits until the recording has been closed (hashed, in the ledger). */
async function endSession(s: SqlSocket) {
  s.close();
  await s.closed;
  return ledgerEvent('recording.closed', s.ready.sessionId);
}

const fileOf = (sessionId: string) => path.join(recDir, `${sessionId}.jsonl`);

/** Every line of a recording, each checked against the protocol's schema. */
function linesOf(sessionId: string): Line[] {
  const text = readFileSync(fileOf(sessionId), 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => SqlRecordingLine.parse(JSON.parse(l)));
}

const statementsOf = (lines: Line[], runId?: string) =>
  lines.filter(
    (l): l is SqlRecordingLineOf<'statement'> =>
      l.type === 'statement' && (runId === undefined || l.runId === runId),
  );
const of = <T extends Frame['type']>(frames: Frame[], type: T) =>
  frames.filter((f): f is Extract<Frame, { type: T }> => f.type === type);

beforeAll(async () => {
  pgServer = await startPostgres({ seedDemo: true });
  registerSecret(pgServer.password);
  recDir = path.join(mkdtempSync(path.join(tmpdir(), 'sallyport-sqlrec-')), 'recordings');
  t = await startTestGateway({
    config: {
      recording: { dir: recDir, flushMs: 100, sqlResultRows: KEEP },
      targets: [postgresTarget(pgServer, { labels: { env: 'sql-recording-test' } })],
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
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await t?.stop();
  await pgServer?.stop();
  if (recDir) rmSync(path.dirname(recDir), { recursive: true, force: true });
});

describe('what a recording holds', () => {
  let readSession: string;

  it('records statements, verdicts, row counts and the first N masked rows as the client saw them', async () => {
    const s = await openSql(await grant('read'));
    readSession = s.ready.sessionId;
    const all = await s.run('select id, name, email, card_number from customers order by id', 'all');
    const two = await s.run('select 1 as a; select 1/0 as b', 'two');
    await s.run('select 1;\nselect * fro customers', 'syntax');
    await s.run(`select name from customers where email = '${rawEmails[3]}'`, 'literal');
    s.start('select pg_sleep(30)', 'sleepy');
    await new Promise((r) => setTimeout(r, 300));
    s.send({ type: 'cancel', id: 'sleepy' });
    await s.waitFor((f) => f.type === 'cancelled' && f.id === 'sleepy');
    const closed = await endSession(s);

    const lines = linesOf(readSession);
    expect(lines[0]).toEqual({
      type: 'header',
      version: 1,
      sessionId: readSession,
      targetId: 'demo',
      grantId: s.ready.grantId,
      username: 'alice',
      level: 'read',
      readOnly: true,
      resultRows: KEEP,
      startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(lines.at(-1)).toMatchObject({
      type: 'end',
      reason: 'the client disconnected',
      code: 'client_closed',
      statements: 3, // all, the first of two, literal
    });
    expect(lines.filter((l) => l.type === 'batch').map((l) => (l as { runId: string }).runId)).toEqual([
      'all',
      'two',
      'syntax',
      'literal',
      'sleepy',
    ]);

    // The first KEEP rows, exactly as sent, with the masked cells' coordinates.
    const [big] = statementsOf(lines, 'all');
    const sentRows = of(all, 'rows').flatMap((f) => f.rows);
    const sentMasked = of(all, 'rows').flatMap((f) => f.masked);
    expect(sentRows).toHaveLength(50);
    expect(big).toMatchObject({
      index: 0,
      sql: 'select id, name, email, card_number from customers order by id',
      verdict: 'allow',
      command: 'SELECT',
      rowCount: 50,
      truncated: false,
      columns: of(all, 'columns')[0]?.columns,
    });
    expect(big?.rule).toBeUndefined();
    expect(big?.error).toBeUndefined();
    expect(big?.rows).toEqual(sentRows.slice(0, KEEP));
    expect(big?.masked).toEqual(sentMasked.filter(([r]) => r < KEEP));
    expect(big?.masked).toHaveLength(2 * KEEP);
    expect(big?.rows[0]?.[2]).toMatch(/^•+\.com$/);
    expect(big?.durationMs).toBeGreaterThanOrEqual(0);

    // A batch: one line per statement, the failing one with its error.
    const [ok, failed] = statementsOf(lines, 'two');
    expect(ok).toMatchObject({
      index: 0,
      sql: 'select 1 as a',
      command: 'SELECT',
      rowCount: 1,
      rows: [['1']],
    });
    expect(failed).toMatchObject({
      index: 1,
      sql: 'select 1/0 as b',
      verdict: 'allow',
      rowCount: null,
      command: null,
      error: { code: '22012', message: 'division by zero' },
    });
    expect(of(two, 'error')[0]).toMatchObject({ code: '22012', statementIndex: 1 });

    // SQL that does not parse: refused by the guard, recorded as such.
    expect(statementsOf(lines, 'syntax')).toEqual([
      expect.objectContaining({
        index: 0,
        sql: 'select 1;\nselect * fro customers',
        verdict: 'block',
        rule: 'syntax-error',
        rowCount: null,
        error: expect.objectContaining({ code: '42601', position: 20 }),
      }),
    ]);

    // The SQL text is masked like the ledger's: a literal e-mail does not reach the recording.
    const [literal] = statementsOf(lines, 'literal');
    expect(literal?.sql).not.toContain(rawEmails[3]);
    expect(literal?.sql).toMatch(/^select name from customers where email = '•+\.com'$/);
    expect(literal?.rows).toEqual([[customers[3]!.name]]);

    // Cancel: the running statement, then a cancel line.
    const sleepy = lines.filter((l) => 'runId' in l && l.runId === 'sleepy');
    expect(sleepy.map((l) => l.type)).toEqual(['batch', 'statement', 'cancel']);
    expect(sleepy[1]).toMatchObject({ sql: 'select pg_sleep(30)', cancelled: true, rowCount: null });
    expect(sleepy[2]).toMatchObject({ index: 0 });

    // Hash: the file's bytes, the ledger's recording.closed and sql.session.ended agree.
    const sha = createHash('sha256')
      .update(readFileSync(fileOf(readSession)))
      .digest('hex');
    expect(closed.data).toMatchObject({ sessionId: readSession, kind: 'sql', sha256: sha });
    expect((await ledgerEvent('sql.session.ended', readSession)).data).toMatchObject({ recordingHash: sha });
    expect(await t.gw.recordings.get(readSession)).toMatchObject({ status: 'complete', sha256: sha });
  });

  it('records blocked and held statements with their rule, and writes with their counts', async () => {
    const s = await openSql(await grant('write'));
    const id = s.ready.sessionId;
    // Held for review (every session has review), then denied: a review line, then the refusal.
    const held = await s.run('delete from customers', 'del');
    expect(held).toEqual([expect.objectContaining({ type: 'review', status: 'pending' })]);
    const reviewId = (held[0] as { reviewId: string }).reviewId;
    await t.client(await t.token('bob')).denyReview(reviewId, 'keep the customers');
    await s.waitFor((f) => f.type === 'blocked' && f.id === 'del');
    expect((await s.run('select 1; alter system set work_mem = 1', 'sys')).at(-1)).toMatchObject({
      type: 'blocked',
    });
    // Held, then withdrawn by the requester: the review line and the cancel, no statement ran.
    const withdrawn = await s.run('delete from customers', 'del2');
    expect(withdrawn).toEqual([expect.objectContaining({ type: 'review', status: 'pending' })]);
    s.send({ type: 'cancel', id: 'del2' });
    await s.waitFor((f) => f.type === 'cancelled' && f.id === 'del2');
    const w = await s.run('create temp table rec_notes (n int); insert into rec_notes values (1), (2)', 'w');
    expect(w.at(-1)).toMatchObject({ type: 'complete' });
    const again = await s.run('create temp table if not exists rec_notes (n int)', 'again');
    expect(again.find((f) => f.type === 'notice')).toMatchObject({ severity: 'NOTICE', code: '42P07' });
    await endSession(s);

    const lines = linesOf(id);
    const refusal = { rowCount: null, command: null, rows: [] };
    expect(statementsOf(lines, 'del')).toEqual([
      expect.objectContaining({
        index: 0,
        sql: 'delete from customers',
        verdict: 'review',
        rule: 'delete-without-where',
        reviewId,
        ...refusal,
      }),
      expect.objectContaining({
        index: 0,
        sql: 'delete from customers',
        verdict: 'block',
        rule: 'delete-without-where',
        message: 'denied by bob: keep the customers',
        ...refusal,
      }),
    ]);
    const del2 = lines.filter((l) => 'runId' in l && l.runId === 'del2');
    expect(del2.map((l) => l.type)).toEqual(['batch', 'statement', 'cancel']);
    expect(del2[1]).toMatchObject({ verdict: 'review', rule: 'delete-without-where', ...refusal });
    expect(del2[2]).not.toHaveProperty('index');
    // Only the blocked statement: nothing in the batch ran.
    expect(statementsOf(lines, 'sys')).toEqual([
      expect.objectContaining({
        index: 1,
        sql: 'alter system set work_mem = 1',
        verdict: 'block',
        rule: 'alter-system',
        ...refusal,
      }),
    ]);
    expect(
      statementsOf(lines, 'w').map((l) => ({ index: l.index, command: l.command, rowCount: l.rowCount })),
    ).toEqual([
      { index: 0, command: 'CREATE', rowCount: null },
      { index: 1, command: 'INSERT', rowCount: 2 },
    ]);
    expect(statementsOf(lines, 'w').every((l) => l.notices === undefined)).toBe(true);
    // PostgreSQL's notice is kept with its statement, as the client saw it.
    expect(statementsOf(lines, 'again')).toEqual([
      expect.objectContaining({
        command: 'CREATE',
        notices: [
          { severity: 'NOTICE', message: 'relation "rec_notes" already exists, skipping', code: '42P07' },
        ],
      }),
    ]);
  });

  it('never contains a raw seeded e-mail or card number, in any case', async () => {
    const s = await openSql(await grant('read'));
    for (const sql of [
      'select * from customers',
      'select upper(email), lower(card_number) from customers',
      'select row_to_json(c) from customers c',
      "select string_agg(email || ' ' || card_number, ';') from customers",
      `select count(*) from customers where card_number = '${rawCards[0]}' or email = '${rawEmails[0]}'`,
    ]) {
      expect((await s.run(sql)).at(-1)?.type, sql).toBe('complete');
    }
    await endSession(s);
    const files = readdirSync(recDir).filter((f) => f.endsWith('.jsonl'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      const text = readFileSync(path.join(recDir, f), 'utf8');
      const lower = text.toLowerCase();
      for (const e of rawEmails) expect(lower, f).not.toContain(e.toLowerCase());
      for (const c of rawCards) expect(text, f).not.toContain(c);
      expect(text).not.toContain(pgServer.password);
    }
  });

  it('is served by the API, and refused with 409 recording_tampered once a byte on disk changes', async () => {
    const url = `${t.url}/api/recordings/${readSession}/content`;
    const headers = { authorization: `Bearer ${token}` };
    const res = await recordingFetch(url, { headers });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(readFileSync(fileOf(readSession)))).toBe(true);
    const sha = createHash('sha256').update(body).digest('hex');
    expect(res.headers.get('x-sallyport-sha256')).toBe(sha);
    const meta = await recordingFetch(`${t.url}/api/recordings/${readSession}`, { headers });
    expect(await meta.json()).toMatchObject({
      kind: 'sql',
      status: 'complete',
      sha256: sha,
      username: 'alice',
    });

    // One byte: a digit of the row count.
    const original = readFileSync(fileOf(readSession));
    const at = original.indexOf('"rowCount":50');
    expect(at).toBeGreaterThan(0);
    const edited = Buffer.from(original);
    edited[at + '"rowCount":'.length] = '9'.charCodeAt(0);
    writeFileSync(fileOf(readSession), edited);
    try {
      const tampered = await recordingFetch(url, { headers });
      expect(tampered.status).toBe(409);
      expect(await tampered.json()).toMatchObject({ error: { code: 'recording_tampered' } });
    } finally {
      writeFileSync(fileOf(readSession), original);
    }
    expect((await recordingFetch(url, { headers })).status).toBe(200);
  });

  it('is replayed by `sallyport replay`, with nothing in it acting on the terminal', async () => {
    const admin = await adminClient(pgServer);
    try {
      await admin.query(`create or replace function shout() returns int language plpgsql as $$
        begin
          raise notice E'heard \\x1b[2J from %', 'ann@example.com'
            using detail = 'said twice', hint = 'speak up';
          return 1;
        end $$`);
    } finally {
      await admin.end();
    }
    const s = await openSql(await grant('read'));
    await s.run('select count(*) from customers', 'count');
    await s.run('select shout()', 'shout');
    // The error quotes the value: an escape sequence that would set the terminal's title.
    await s.run(String.raw`select (E'\x1b]0;owned\x07')::int`, 'title');
    await endSession(s);
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (x) => void out.push(x), err: (x) => void err.push(x) };
    const home = mkdtempSync(path.join(tmpdir(), 'sallyport-replay-home-'));
    try {
      const code = await main(['replay', s.ready.sessionId], io, {
        SALLYPORT_HOME: home,
        SALLYPORT_GATEWAY: t.url,
        SALLYPORT_TOKEN: token,
      });
      expect(code, err.join('\n')).toBe(0);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    const text = out.join('\n');
    recordTranscript('cli', text);
    expect(text).toContain(`session ${s.ready.sessionId}: alice on demo (read, read-only)`);
    expect(text).toMatch(/\[allow\] select count\(\*\) from customers\n {4}-> SELECT, 1 row, \d+ ms/);
    expect(text).toContain('-> error 22P02: invalid input syntax for type integer: "\\u001b]0;owned\\u0007"');
    // Notices come with their statement, masked, escaped, with their detail and hint.
    expect(text).toMatch(
      /\[allow\] select shout\(\)\n {4}-> SELECT, 1 row, \d+ ms\n {4}NOTICE: {2}heard \\u001b\[2J from •+\.com\n {4}DETAIL: {2}said twice\n {4}HINT: {2}speak up/,
    );
    expect(text).not.toContain('\u001b');
    expect(text).toMatch(/session ended: the client disconnected \(\d+ statements?\)/);
  });
});

describe('fail closed', () => {
  it('closes the session with a clear reason when the recording cannot be written mid-session', async () => {
    const catalog = t.gw.recordings;
    const realStart = catalog.start;
    let breakIt: ((err: Error) => void) | undefined;
    catalog.start = async (meta) => {
      const rec: ActiveRecording = await realStart.call(catalog, meta);
      const onError = rec.onError.bind(rec);
      // The handler the recorder registers: called as the writer would on a failed write.
      rec.onError = (fn) => {
        breakIt = fn;
        onError(fn);
      };
      return rec;
    };
    let s: SqlSocket;
    try {
      s = await openSql(await grant('read'));
    } finally {
      catalog.start = realStart;
    }
    expect((await s.run('select count(*) from customers')).at(-1)).toMatchObject({ type: 'complete' });
    breakIt?.(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    const closed = await s.waitFor((f) => f.type === 'closed');
    expect(closed).toMatchObject({
      code: 'error',
      reason: 'the session recording could not be written (ENOSPC); the session is closed',
    });
    expect((await s.closed).code).toBe(4502);
    expect((await ledgerEvent('sql.session.ended', s.ready.sessionId)).data).toMatchObject({
      code: 'error',
      reason: expect.stringContaining('recording could not be written'),
    });
  });

  it('refuses the session with recording_unavailable when the recording directory is not writable', async () => {
    const g = await grant('read');
    // chmod does not stop root: then the directory is replaced by a file for the duration.
    const asRoot = process.getuid?.() === 0;
    const moved = `${recDir}.moved`;
    if (asRoot) {
      renameSync(recDir, moved);
      writeFileSync(recDir, 'not a directory');
    } else {
      await chmod(recDir, 0o500);
    }
    const before = readdirSync(asRoot ? moved : recDir).length;
    let refusal: { frame?: Frame; closed?: Promise<{ code: number }> } | undefined;
    try {
      await openSql(g).then(
        () => expect.unreachable('the session opened'),
        (err: { frame?: Frame; closed?: Promise<{ code: number }> }) => {
          refusal = err;
        },
      );
    } finally {
      if (asRoot) {
        rmSync(recDir);
        renameSync(moved, recDir);
      } else {
        await chmod(recDir, 0o700);
      }
    }
    expect(refusal?.frame).toMatchObject({
      type: 'error',
      code: 'recording_unavailable',
      message: expect.stringContaining('cannot be recorded'),
    });
    expect((await refusal?.closed)?.code).toBe(4403);
    expect(readdirSync(recDir)).toHaveLength(before);
    const failed = (await t.gw.ledger.list({ kind: 'sql.session.failed', limit: 10_000 })).at(-1);
    expect(failed?.data).toMatchObject({ grantId: g, code: 'recording_unavailable' });
    // With the directory back, the same grant opens a session that is recorded again.
    const again = await openSql(g);
    expect((await again.run('select 1')).at(-1)).toMatchObject({ type: 'complete' });
    await endSession(again);
    expect(linesOf(again.ready.sessionId)[0]).toMatchObject({ type: 'header' });
  });
});
