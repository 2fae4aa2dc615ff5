// Guardrail rules from the config (`guardrails`, policy/guardrails.ts), scoped per target (id or
// labels) and access level, against a real OpenSSH sshd and a real PostgreSQL: a rule applies on
// the targets and levels it names and nowhere else. Blocked shell commands are proven not to have
// run by the marker file they would create. The SQL client never says `reviews: true`: statement
// review is on for every session. The row cap comes from `guardrails.sql.maxRows`.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { GatewayClient, SqlServerMessage, TerminalServerMessage } from '@sallyport/protocol';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { main } from '../../src/cli/main';
import type { Io } from '../../src/cli/output';
import type { GatewayConfigInput } from '../../src/config/schema';
import { type RunningPostgres, type RunningSshd, startPostgres, startSshd } from '../../src/devstack';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { adminClient, postgresTarget } from '../rig/postgres';
import { hasSshd } from '../rig/sshd';
import { recordTranscript, registerSecret } from '../rig/transcript';

type Level = 'read' | 'write' | 'shell' | 'exec-only';
type SqlFrame = SqlServerMessage;
type TermFrame = TerminalServerMessage;

let pgServer: RunningPostgres;
let sshd: RunningSshd | undefined;
let t: TestGateway;
let admin: pg.Client;
let home: string;
const tokens = { alice: '', bob: '' };
const api = {} as Record<'alice' | 'bob', GatewayClient>;
const closers: Array<() => void> = [];
const REASON = 'checking the configured guardrails for ticket OPS-204';

async function grant(targetId: string, level: Level): Promise<string> {
  const out = await api.alice.requestAccess({ targetId, level, duration: '1h', reason: REASON });
  if (out.outcome !== 'granted') throw new Error(`expected a grant, got ${out.outcome}`);
  return out.grant.id;
}

/** Waits until `pred` holds for the frames seen so far. */
function waiter<F>(frames: F[]) {
  const waiters = new Set<() => void>();
  return {
    push(f: F) {
      frames.push(f);
      for (const w of [...waiters]) w();
    },
    until(what: string, pred: () => boolean, ms = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!pred()) return false;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`timed out waiting for ${what}; last frames: ${JSON.stringify(frames.slice(-5))}`),
          );
        }, ms);
        if (!check()) waiters.add(check);
      });
    },
  };
}

// ---------------------------------------------------------------- SQL

interface SqlSocket {
  ready: Extract<SqlFrame, { type: 'ready' }>;
  framesOf(id: string): SqlFrame[];
  /** Sends `run`; resolves with the run's frames once it ends or is held for review. */
  run(sql: string, id?: string): Promise<SqlFrame[]>;
  /** Resolves once the run has a terminal frame (after a review). */
  settled(id: string): Promise<SqlFrame[]>;
}

let runSeq = 0;
const ENDS = new Set(['complete', 'error', 'blocked', 'cancelled']);

async function openSql(targetId: string, grantId: string): Promise<SqlSocket> {
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/sql`, {
    headers: { authorization: `Bearer ${tokens.alice}` },
  });
  closers.push(() => ws.close());
  const frames: SqlFrame[] = [];
  const w = waiter(frames);
  ws.on('message', (d) => {
    recordTranscript('sql-ws', String(d));
    w.push(JSON.parse(String(d)) as SqlFrame);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // Like the web console: no `reviews` flag.
  ws.send(JSON.stringify({ type: 'open', targetId, grantId }));
  await w.until('ready', () => frames.some((f) => f.type === 'ready' || f.type === 'error'));
  const ready = frames.find((f) => f.type === 'ready');
  if (!ready) throw new Error(`open refused: ${JSON.stringify(frames)}`);
  const framesOf = (id: string) => frames.filter((f) => 'id' in f && f.id === id);
  const settled = async (id: string) => {
    await w.until(`the end of ${id}`, () => framesOf(id).some((f) => ENDS.has(f.type)));
    return framesOf(id);
  };
  return {
    ready,
    framesOf,
    settled,
    async run(sql, id = `q${++runSeq}`) {
      ws.send(JSON.stringify({ type: 'run', id, sql }));
      await w.until(`the end of ${id}`, () =>
        framesOf(id).some((f) => ENDS.has(f.type) || f.type === 'review'),
      );
      return framesOf(id);
    },
  };
}

const types = (frames: SqlFrame[]) => frames.map((f) => f.type);
const countryOf = async (id: number) =>
  (await admin.query('select country from customers where id = $1', [id])).rows[0].country as string;

// ---------------------------------------------------------------- SSH

async function runSsh(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s) };
  const code = await main(['ssh', ...argv], io, {
    SALLYPORT_HOME: home,
    SALLYPORT_GATEWAY: t.url,
    SALLYPORT_TOKEN: tokens.alice,
  });
  return { code, out: out.join(''), err: err.join('') };
}

async function shellOn(targetId: string, grantId: string) {
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/terminal`, {
    headers: { authorization: `Bearer ${tokens.alice}` },
  });
  closers.push(() => ws.close());
  const frames: TermFrame[] = [];
  const w = waiter(frames);
  ws.on('message', (d: Buffer) => w.push(JSON.parse(d.toString('utf8')) as TermFrame));
  await new Promise<void>((resolve) => ws.once('open', () => resolve()));
  const stdout = () =>
    Buffer.concat(
      frames.flatMap((f) => (f.type === 'output' ? [Buffer.from(f.data, 'base64')] : [])),
    ).toString('utf8');
  const notices = () =>
    frames.filter((f): f is Extract<TermFrame, { type: 'notice' }> => f.type === 'notice');
  const input = (text: string) =>
    ws.send(JSON.stringify({ type: 'input', data: Buffer.from(text).toString('base64') }));
  ws.send(JSON.stringify({ type: 'open', targetId, grantId, mode: 'shell', cols: 120, rows: 30 }));
  await w.until('ready', () => frames.some((f) => f.type === 'ready'));
  input('echo rea""dy-$((1+1))\r');
  await w.until('the prompt', () => stdout().includes('ready-2'));
  return { stdout, notices, input, until: w.until };
}

const sshTarget = (s: RunningSshd, id: string, env: string) => ({
  id,
  kind: 'ssh' as const,
  host: s.host,
  port: s.port,
  user: s.user,
  hostKey: s.hostPublicKey,
  labels: { env },
  credential: { privateKey: s.clientPrivateKey },
});

beforeAll(async () => {
  home = mkdtempSync(path.join(tmpdir(), 'sallyport-guardrails-config-'));
  pgServer = await startPostgres({ seedDemo: true });
  registerSecret(pgServer.password);
  if (hasSshd) sshd = await startSshd();
  const pgTarget = (id: string, env: string) => postgresTarget(pgServer, { id, labels: { env } });
  const config: Partial<GatewayConfigInput> = {
    targets: [
      pgTarget('db-prod', 'prod'),
      pgTarget('db-dev', 'dev'),
      ...(sshd ? [sshTarget(sshd, 'box-prod', 'prod'), sshTarget(sshd, 'box-dev', 'dev')] : []),
    ],
    guardrails: {
      sql: {
        maxRows: 20,
        rules: [
          {
            name: 'prod-customer-changes',
            action: 'review',
            message: 'Changing customers on production needs approval.',
            match: { kinds: ['UpdateStmt', 'DeleteStmt'], relations: ['customers'] },
            targets: { labels: { env: 'prod' } },
            levels: ['write'],
          },
          {
            name: 'dev-readers-no-customers',
            action: 'block',
            message: 'Read sessions on db-dev may not read customers.',
            match: { relations: ['customers'] },
            targets: { ids: ['db-dev'] },
            levels: ['read'],
          },
        ],
      },
      shell: {
        rules: [
          {
            name: 'prod-no-touch',
            action: 'block',
            message: 'No touching files on production.',
            match: { commands: ['touch'] },
            targets: { labels: { env: 'prod' } },
          },
          {
            name: 'dev-exec-no-mkdir',
            action: 'block',
            message: 'Exec-only sessions on box-dev may not create directories.',
            match: { commands: ['mkdir'] },
            targets: { ids: ['box-dev'] },
            levels: ['exec-only'],
          },
        ],
      },
    },
    access: {
      reviewers: { users: ['bob'] },
      rules: [
        {
          name: 'everything-auto',
          requesters: { users: ['alice'] },
          targets: { ids: ['db-prod', 'db-dev', 'box-prod', 'box-dev'] },
          levels: ['read', 'write', 'shell', 'exec-only'],
          maxDuration: '8h',
          approval: 'auto',
        },
      ],
    },
  };
  t = await startTestGateway({ config });
  [tokens.alice, tokens.bob] = await Promise.all([t.token('alice'), t.token('bob')]);
  api.alice = t.client(tokens.alice);
  api.bob = t.client(tokens.bob);
  admin = await adminClient(pgServer);
});

afterAll(async () => {
  for (const close of closers) close();
  await admin?.end().catch(() => {});
  await t?.stop();
  await sshd?.stop();
  await pgServer?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('SQL rules from the config', () => {
  it('a rule scoped by label and level holds writes on the prod target only', async () => {
    const before = await countryOf(1);
    const prod = await openSql('db-prod', await grant('db-prod', 'write'));
    const sql = "update customers set country = 'DE' where id = 1";
    const held = await prod.run(sql, 'upd-prod');
    expect(held).toEqual([
      expect.objectContaining({
        type: 'review',
        status: 'pending',
        rule: 'prod-customer-changes',
        message: expect.stringContaining('Changing customers on production needs approval.'),
      }),
    ]);
    expect(await countryOf(1)).toBe(before);
    const reviewId = (held[0] as { reviewId: string }).reviewId;
    await api.bob.approveReview(reviewId, 'ticket OPS-204');
    const ran = await prod.settled('upd-prod');
    expect(types(ran)).toEqual(['review', 'review', 'done', 'complete']);
    expect(await countryOf(1)).toBe('DE');

    // The same statement on the dev target runs at once: the rule is not in effect there.
    const dev = await openSql('db-dev', await grant('db-dev', 'write'));
    expect(types(await dev.run("update customers set country = 'FR' where id = 1"))).toEqual([
      'done',
      'complete',
    ]);
    expect(await countryOf(1)).toBe('FR');
    // Built-in rules still apply next to the configured ones.
    expect((await dev.run('select 1; alter system set work_mem = 1')).at(-1)).toMatchObject({
      type: 'blocked',
      rule: 'alter-system',
    });
  });

  it('a rule scoped by target id and the read level blocks there, and not at write or on another target', async () => {
    const query = 'select count(*) from customers';
    const devRead = await openSql('db-dev', await grant('db-dev', 'read'));
    expect(await devRead.run(query)).toEqual([
      expect.objectContaining({ type: 'blocked', rule: 'dev-readers-no-customers', statementIndex: 0 }),
    ]);
    const devWrite = await openSql('db-dev', await grant('db-dev', 'write'));
    expect((await devWrite.run(query)).at(-1)).toMatchObject({ type: 'complete' });
    const prodRead = await openSql('db-prod', await grant('db-prod', 'read'));
    expect((await prodRead.run(query)).at(-1)).toMatchObject({ type: 'complete' });
    const blocked = (await t.gw.ledger.list({ kind: 'sql.blocked', limit: 10_000 })).filter(
      (e) => e.data.rule === 'dev-readers-no-customers',
    );
    expect(blocked.map((e) => e.target_id)).toEqual(['db-dev']);
  });

  it('caps results at guardrails.sql.maxRows', async () => {
    const s = await openSql('db-prod', await grant('db-prod', 'read'));
    expect(s.ready.maxRows).toBe(20);
    const frames = await s.run('select id from customers order by id');
    expect(frames.flatMap((f) => (f.type === 'rows' ? f.rows : []))).toHaveLength(20);
    expect(frames.find((f) => f.type === 'done')).toMatchObject({ rowCount: 20, truncated: true });
  });
});

describe.skipIf(!hasSshd)('shell rules from the config', () => {
  it('a rule scoped by label blocks exec commands and typed lines on prod only', async () => {
    await grant('box-prod', 'shell');
    await grant('box-dev', 'shell');
    const marker = `/tmp/gc-${randomUUID()}`;
    const onProd = await runSsh(['box-prod', '--', `touch ${marker}`]);
    expect(onProd.code).toBe(8);
    expect(onProd.err).toContain('prod-no-touch');
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(marker)).toBe(false);
    const ev = (await t.gw.ledger.list({ kind: 'ssh.blocked', limit: 100 })).find(
      (e) => e.data.text === `touch ${marker}`,
    );
    expect(ev).toMatchObject({ target_id: 'box-prod', data: { rule: 'prod-no-touch', mode: 'exec' } });

    // Interactive: the typed line is blocked at Enter, and the session goes on.
    const typedMarker = `/tmp/gc-${randomUUID()}`;
    const term = await shellOn('box-prod', await grant('box-prod', 'shell'));
    term.input(`touch ${typedMarker}\r`);
    await term.until('blocked', () => term.notices().some((n) => n.code === 'blocked'));
    expect(term.notices().find((n) => n.code === 'blocked')?.message).toContain('prod-no-touch');
    term.input('echo go""on-$((2+3))\r');
    await term.until('goon-5', () => term.stdout().includes('goon-5'));
    expect(existsSync(typedMarker)).toBe(false);

    // The same command on the dev target runs.
    const onDev = await runSsh(['box-dev', '--', `touch ${marker}`]);
    expect(onDev.code, onDev.err).toBe(0);
    expect(existsSync(marker)).toBe(true);
    rmSync(marker, { force: true });
  });

  it('a rule scoped to the exec-only level blocks there and not under a shell grant', async () => {
    const execOnly = await grant('box-dev', 'exec-only');
    const shellGrant = await grant('box-dev', 'shell');
    const dir = `/tmp/gc-dir-${randomUUID()}`;
    const refused = await runSsh(['box-dev', '--grant', execOnly, '--', `mkdir ${dir}`]);
    expect(refused.code).toBe(8);
    expect(refused.err).toContain('dev-exec-no-mkdir');
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(dir)).toBe(false);
    const ran = await runSsh(['box-dev', '--grant', shellGrant, '--', `mkdir ${dir}`]);
    expect(ran.code, ran.err).toBe(0);
    expect(existsSync(dir)).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });
});
