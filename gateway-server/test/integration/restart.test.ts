// Expiry survives a crash: the gateway runs as a real `sallyport gateway` child process,
// is killed with SIGKILL while a grant and a pending request are live, stays down past
// both deadlines, and a new process on the same store must catch up on start-up.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AuditEventView,
  createGatewayClient,
  type GatewayClient,
  type GrantView,
  type RequestView,
} from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { onProcessExit, sleep } from '../../src/devstack';
import { signIn } from '../rig/oidc-login';
import { recordingFetch, recordTranscript, registerSecret } from '../rig/transcript';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'gateway-server/bin/sallyport.mjs');
const REASON = 'checking the nightly import after the incident';

interface Child {
  proc: ChildProcess;
  url: string;
  issuer: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let dir: string;
let configFile: string;
let masterKey: string;
const children: ChildProcess[] = [];
const unhookExit = onProcessExit(() => {
  // The test process itself is going away: leave no gateway behind.
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts `sallyport gateway --config <file>` and resolves once it prints its URL. */
async function startChild(label: string): Promise<Child> {
  const env: NodeJS.ProcessEnv = { ...process.env, SALLYPORT_MASTER_KEY: masterKey };
  delete env.SALLYPORT_DATABASE_URL;
  delete env.SALLYPORT_LOG_LEVEL;
  const proc = spawn(process.execPath, [BIN, 'gateway', '--config', configFile], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const ready = new Promise<{ url: string; issuer: string }>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      out += text;
      recordTranscript(`log ${label}`, text);
      const m = /sallyport gateway listening on (\S+) \(identity: (\S+)\)/.exec(out);
      if (m) resolve({ url: m[1]!, issuer: m[2]! });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('error', reject);
    void exited.then(({ code, signal }) =>
      reject(new Error(`gateway ${label} exited (code ${code}, signal ${signal}) before listening:\n${out}`)),
    );
    setTimeout(
      () => reject(new Error(`gateway ${label} did not print its URL within 60 s:\n${out}`)),
      60_000,
    ).unref();
  });
  return { proc, ...(await ready), output: () => out, exited };
}

async function killHard(c: Child): Promise<void> {
  if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  expect(await c.exited).toEqual({ code: null, signal: 'SIGKILL' });
}

const alive = (pid: number | undefined) => {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Every live process whose command line mentions this suite's temp dir. */
function processesUsing(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function tokenFor(issuer: string, user: 'alice' | 'carol'): Promise<string> {
  const t = await signIn(
    { issuer },
    {
      clientId: 'sallyport-desktop',
      redirectUri: 'http://127.0.0.1:1/callback',
      username: user,
      password: `${user}-demo`,
    },
  );
  return t.access_token;
}
const clientOf = (url: string, token: string): GatewayClient =>
  createGatewayClient({ baseUrl: url, token: () => token, fetch: recordingFetch });

// What happened before the crash, and when.
let first: Child;
let second: Child;
let grant: GrantView;
let pending: RequestView;
let killedAt: number;
let restartedAt: number;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sallyport-restart-'));
  masterKey = randomBytes(32).toString('base64');
  registerSecret(masterKey);
  configFile = path.join(dir, 'sallyport.yaml');
  writeFileSync(
    configFile,
    stringify({
      server: { host: '127.0.0.1', port: 0 },
      database: { dataDir: path.join(dir, 'store') },
      identity: { devProvider: { enabled: true } },
      logging: { level: 'info' },
      targets: [
        {
          id: 'pg-crash',
          kind: 'postgres',
          host: '127.0.0.1',
          port: 1,
          user: 'app',
          database: 'app',
          labels: { env: 'staging' },
        },
      ],
      access: {
        rules: [
          {
            name: 'read-auto',
            requesters: { groups: ['developers'] },
            targets: { ids: ['pg-crash'] },
            levels: ['read'],
            maxDuration: '1h',
            approval: 'auto',
          },
          {
            name: 'write-approved',
            requesters: { groups: ['developers'] },
            targets: { ids: ['pg-crash'] },
            levels: ['write'],
            maxDuration: '1h',
            approval: { approvers: { groups: ['approvers'] } },
            pendingTimeout: '3s',
          },
        ],
      },
    }),
  );

  first = await startChild('first');
  const alice = clientOf(first.url, await tokenFor(first.issuer, 'alice'));

  const asked = await alice.requestAccess({
    targetId: 'pg-crash',
    level: 'write',
    duration: '30m',
    reason: REASON,
  });
  expect(asked.outcome).toBe('pending');
  pending = asked.request;
  expect((await alice.request(pending.id)).status).toBe('pending');

  const out = await alice.requestAccess({ targetId: 'pg-crash', level: 'read', duration: 3, reason: REASON });
  if (out.outcome !== 'granted') throw new Error(`expected a grant, got ${out.outcome}`);
  grant = out.grant;
  const mine = await alice.grants({ scope: 'mine' });
  expect(mine.find((g) => g.id === grant.id)).toMatchObject({ status: 'active', revocation: 'none' });

  await killHard(first);
  killedAt = Date.now();
  const expiresAt = new Date(grant.expiresAt).getTime();
  // Killed well before either deadline: the first process cannot have acted on them.
  expect(expiresAt - killedAt).toBeGreaterThan(1500);
  expect(new Date(pending.expiresAt).getTime() - killedAt).toBeGreaterThan(1500);

  // Down past both deadlines (grant: 3 s after creation; pending request: 3 s after its creation).
  await sleep(
    Math.max(new Date(grant.createdAt).getTime() + 4500, new Date(pending.expiresAt).getTime() + 1000) -
      Date.now(),
  );
  restartedAt = Date.now();
  second = await startChild('second');
});

afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    }
  }
  unhookExit();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a gateway killed with SIGKILL', () => {
  let events: AuditEventView[];
  let carol: GatewayClient;

  it('reopens its store and revokes the grant that expired while it was down', async () => {
    expect(second.output()).not.toMatch(/"level":(50|60)/);
    // The dev provider's signing key is new after the restart: sign in again.
    const alice = clientOf(second.url, await tokenFor(second.issuer, 'alice'));
    carol = clientOf(second.url, await tokenFor(second.issuer, 'carol'));

    const after = (await alice.grants({ scope: 'mine' })).find((g) => g.id === grant.id);
    expect(after).toMatchObject({
      status: 'revoked',
      revokeReason: 'expired',
      revokedBy: 'sallyport',
      revocation: 'completed',
    });

    events = await carol.audit({ limit: 10_000 });
    const trail = events.filter((e) => e.data.grantId === grant.id);
    expect(trail.map((e) => `${e.kind}:${e.actor}`)).toEqual([
      'grant.issued:policy',
      'grant.revoked:sallyport',
      'revocation.completed:sallyport',
    ]);
    const revoked = trail[1]!;
    const completed = trail[2]!;
    expect(revoked.data).toMatchObject({ reason: 'expired' });
    const expiresAt = new Date(grant.expiresAt).getTime();
    // Recorded after the expiry, by the second process (the first was dead by then).
    expect(new Date(revoked.at).getTime()).toBeGreaterThanOrEqual(expiresAt);
    expect(new Date(revoked.at).getTime()).toBeGreaterThanOrEqual(restartedAt);
    expect(completed.data).toMatchObject({ sessionsClosed: 0, attempts: 1 });
    console.log(
      `grant expired ${expiresAt - killedAt} ms after the kill; revoked ${new Date(revoked.at).getTime() - expiresAt} ms after expiry (restart began ${restartedAt - expiresAt} ms after expiry)`,
    );
  });

  it('expires the pending request whose timeout passed while it was down', async () => {
    const alice = clientOf(second.url, await tokenFor(second.issuer, 'alice'));
    const r = await alice.request(pending.id);
    expect(r).toMatchObject({ status: 'expired', decidedBy: 'sallyport', grantId: null });
    const story = events.filter((e) => e.requestId === pending.id).map((e) => `${e.kind}:${e.actor}`);
    expect(story).toEqual(['request.created:alice', 'request.expired:sallyport']);
  });

  it('kept the hash chain intact across the crash', async () => {
    expect(await carol.verifyAudit()).toMatchObject({ ok: true });
    // The new process appended to the chain the first one left: each event links to the one before.
    // `seq` only increases; it may jump after a crash (PostgreSQL logs sequences 32 values ahead,
    // and crash recovery resumes from the logged value), so gaps are not a sign of deletion.
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.prevHash).toBe(events[i - 1]!.hash);
      expect(events[i]!.seq).toBeGreaterThan(events[i - 1]!.seq);
    }
    console.log(`ledger seq across the crash: ${events.map((e) => e.seq).join(', ')}`);
  });

  it('leaves no process behind', async () => {
    expect(alive(first.proc.pid)).toBe(false);
    second.proc.kill('SIGTERM');
    const exit = await Promise.race([second.exited, sleep(15_000).then(() => 'timeout' as const)]);
    expect(exit, second.output().slice(-2000)).not.toBe('timeout');
    expect(alive(second.proc.pid)).toBe(false);
    expect(processesUsing(dir)).toEqual([]);
  });
});
