// SSH sessions through the gateway, against a real OpenSSH sshd: the terminal
// WebSocket channel, the `sallyport ssh` CLI, host key pinning, credential and
// reachability failures, grants (levels, revocation, expiry) and backpressure.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type {
  AccessLevel,
  GatewayClient,
  TerminalClientMessage,
  TerminalServerMessage,
} from '@sallyport/protocol';
import { utils } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { main } from '../../src/cli/main';
import type { Io } from '../../src/cli/output';
import { type RunningSshd, startSshd } from '../../src/devstack';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { hasSshd } from '../rig/sshd';
import { recordTranscript } from '../rig/transcript';

const REASON = 'debugging the nightly import job on the box';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let sshd: RunningSshd;
let t: TestGateway;
let home: string;
const tokens = { alice: '', bob: '' };
const api = {} as Record<'alice' | 'bob', GatewayClient>;
/** A key pair nobody trusts: as a host key (mismatch) and as a client credential (auth failure). */
const strangerHost = utils.generateKeyPairSync('ed25519');
const strangerClient = utils.generateKeyPairSync('ed25519');
/** Every frame text any test received, for the credential check at the end. */
const seen: string[] = [];

type Frame = TerminalServerMessage;

interface Term {
  ws: WebSocket;
  frames: Frame[];
  send(m: TerminalClientMessage | string): void;
  input(text: string): void;
  /** Everything on stdout so far, decoded. */
  stdout(): string;
  stderr(): string;
  waitFor(what: string, pred: (f: Frame[]) => boolean, ms?: number): Promise<void>;
  closed: Promise<{ code: number; frame?: Extract<Frame, { type: 'closed' }> }>;
}

function openTerminal(
  token: string | undefined,
  opts: { keep?: boolean; onFrame?: (f: Frame, size: number) => void } = {},
): Term {
  const keep = opts.keep ?? true;
  const ws = new WebSocket(
    `${t.url.replace(/^http/, 'ws')}/api/terminal`,
    token ? { headers: { authorization: `Bearer ${token}` } } : {},
  );
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (d: Buffer) => {
    const text = d.toString('utf8');
    recordTranscript('terminal', text);
    const f = JSON.parse(text) as Frame;
    opts.onFrame?.(f, text.length);
    if (keep || f.type !== 'output') {
      seen.push(text);
      frames.push(f);
    }
    for (const w of waiters) w();
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const closed = new Promise<{ code: number; frame?: Extract<Frame, { type: 'closed' }> }>((resolve) =>
    ws.once('close', (code) =>
      resolve({
        code,
        frame: frames.find((f): f is Extract<Frame, { type: 'closed' }> => f.type === 'closed'),
      }),
    ),
  );
  const decode = (stream: 'stdout' | 'stderr') =>
    Buffer.concat(
      frames.flatMap((f) =>
        f.type === 'output' && f.stream === stream ? [Buffer.from(f.data, 'base64')] : [],
      ),
    ).toString('utf8');
  return {
    ws,
    frames,
    send(m) {
      void opened.then(() => ws.send(typeof m === 'string' ? m : JSON.stringify(m)));
    },
    input(text) {
      this.send({ type: 'input', data: Buffer.from(text).toString('base64') });
    },
    stdout: () => decode('stdout'),
    stderr: () => decode('stderr'),
    waitFor(what, pred, ms = 15_000) {
      return new Promise<void>((resolve, reject) => {
        if (pred(frames)) return resolve();
        const check = () => {
          if (!pred(frames)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `timed out waiting for ${what}; frames: ${JSON.stringify(frames.slice(-8)).slice(0, 2000)}`,
            ),
          );
        }, ms);
        waiters.add(check);
      });
    },
    closed,
  };
}

const has = (type: Frame['type']) => (fs: Frame[]) => fs.some((f) => f.type === type);
const notices = (term: Term) =>
  term.frames.filter((f): f is Extract<Frame, { type: 'notice' }> => f.type === 'notice');

async function grant(
  user: 'alice' | 'bob',
  targetId: string,
  level: AccessLevel,
  duration: string | number = '1h',
) {
  const out = await api[user].requestAccess({ targetId, level, duration, reason: REASON });
  if (out.outcome !== 'granted') throw new Error(`expected a grant, got ${out.outcome}`);
  return out.grant.id;
}

const shell = (targetId: string, grantId: string): TerminalClientMessage => ({
  type: 'open',
  targetId,
  grantId,
  mode: 'shell',
  cols: 80,
  rows: 24,
});
const exec = (targetId: string, grantId: string, command: string): TerminalClientMessage => ({
  type: 'open',
  targetId,
  grantId,
  mode: 'exec',
  command,
  cols: 80,
  rows: 24,
});

async function ledger(kind: string) {
  return t.gw.ledger.list({ kind, limit: 10_000 });
}

async function runCli(argv: string[], as: 'alice' | 'bob') {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s) };
  const code = await main(argv, io, {
    SALLYPORT_HOME: home,
    SALLYPORT_GATEWAY: t.url,
    SALLYPORT_TOKEN: tokens[as],
  });
  return { code, out: out.join(''), err: err.join('') };
}

describe.skipIf(!hasSshd)('SSH sessions through the gateway', () => {
  beforeAll(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'sallyport-ssh-cli-'));
    sshd = await startSshd();
    // Nobody listens on TCP port 1 of the loopback, and no test server can take it (they listen on
    // ephemeral ports): a free port found now could be taken by a server of a test file running
    // in parallel before this one connects.
    const deadPort = 1;
    const ssh = (id: string, extra: Record<string, unknown> = {}) => ({
      id,
      kind: 'ssh' as const,
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      hostKey: sshd.hostPublicKey,
      labels: { env: 'prod' },
      credential: { privateKey: sshd.clientPrivateKey },
      ...extra,
    });
    t = await startTestGateway({
      config: {
        targets: [
          ssh('box'),
          ssh('box-impostor', { hostKey: strangerHost.public }),
          ssh('box-stranger', { credential: { privateKey: strangerClient.private } }),
          ssh('box-down', { port: deadPort }),
        ],
        access: {
          rules: [
            {
              name: 'prod-ssh-auto',
              requesters: { groups: ['developers'] },
              targets: { labels: { env: 'prod' } },
              levels: ['shell', 'exec-only'],
              maxDuration: '8h',
              approval: 'auto',
            },
          ],
        },
      } as never,
    });
    [tokens.alice, tokens.bob] = await Promise.all([t.token('alice'), t.token('bob')]);
    api.alice = t.client(tokens.alice);
    api.bob = t.client(tokens.bob);
  });
  afterAll(async () => {
    await t?.stop();
    await sshd?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('runs an interactive shell: input, output, resize, Ctrl-C, exit', async () => {
    const grantId = await grant('alice', 'box', 'shell');
    const term = openTerminal(tokens.alice);
    term.send(shell('box', grantId));
    await term.waitFor('ready', has('ready'));
    const ready = term.frames.find((f) => f.type === 'ready');
    expect(ready?.type === 'ready' && UUID.test(ready.sessionId)).toBe(true);

    term.input('echo hi-$((40+2))\r');
    await term.waitFor('hi-42', () => term.stdout().includes('hi-42'));

    term.send({ type: 'resize', cols: 100, rows: 30 });
    term.input('stty size\r');
    await term.waitFor('30 100', () => term.stdout().includes('30 100'));

    term.input('sleep 30\r');
    await new Promise((r) => setTimeout(r, 300));
    term.send({ type: 'signal', name: 'INT' });
    term.input('echo after-$((6*7))-int\r');
    await term.waitFor('after-42-int', () => term.stdout().includes('after-42-int'), 5000);

    term.input('exit 0\r');
    const { code, frame } = await term.closed;
    expect(code).toBe(1000);
    expect(term.frames.find((f) => f.type === 'exit')).toEqual({ type: 'exit', code: 0 });
    expect(frame).toMatchObject({ code: 'exit' });

    const sessionId = ready?.type === 'ready' ? ready.sessionId : '';
    const started = (await ledger('session.started')).find((e) => e.data.sessionId === sessionId);
    expect(started).toMatchObject({
      actor: 'alice',
      target_id: 'box',
      data: { grantId, mode: 'shell', targetId: 'box' },
    });
    await expect
      .poll(async () => (await ledger('session.ended')).find((e) => e.data.sessionId === sessionId)?.data)
      .toMatchObject({
        reason: 'exit',
        exitCode: 0,
        grantId,
      });
    const ended = (await ledger('session.ended')).find((e) => e.data.sessionId === sessionId)!;
    expect(ended.data.bytesIn).toBeGreaterThan(20);
    expect(ended.data.bytesOut).toBeGreaterThan(20);
    expect(ended.data.durationMs).toBeGreaterThan(0);
    expect(t.gw.sessions.count(grantId)).toBe(0);
  });

  it('runs one command through the CLI, with its output and exit code', async () => {
    const grantId = await grant('alice', 'box', 'exec-only');
    // Several arguments are an argv, quoted for the remote shell. (Not `sh -c …`: the built-in
    // guardrails hold that for review; ssh-guard.test.ts covers it.)
    const quoted = await runCli(
      ['ssh', 'box', '--', 'printf', '%s|', 'two words', "it's", ';', 'exit', '3'],
      'alice',
    );
    expect(quoted.out).toBe("two words|it's|;|exit|3|");
    expect(quoted.code, quoted.err).toBe(0);
    const exit3 = await runCli(['ssh', 'box', '--', 'exit', '3'], 'alice');
    expect(exit3.code, exit3.err).toBe(3);

    const r = await runCli(
      ['ssh', 'box', '--grant', grantId, '--', 'echo to-out $((20+1)); echo to-err >&2; exit 7'],
      'alice',
    );
    expect(r.code, r.err).toBe(7);
    expect(r.out).toBe('to-out 21\n');
    expect(r.err).toContain('to-err');

    const ok = await runCli(['ssh', 'box', '--', 'echo hello from $(hostname) | tr a-z A-Z'], 'alice');
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/^HELLO FROM /);

    const exec = (await ledger('session.started')).filter(
      (e) => e.data.grantId === grantId && e.data.mode === 'exec',
    );
    expect(exec.map((e) => e.data.command)).toContain(`printf '%s|' 'two words' 'it'\\''s' ';' exit 3`);
  });

  it('tells a CLI user without a grant how to get one', async () => {
    const r = await runCli(['ssh', 'box', '--', 'true'], 'bob');
    expect(r.code).toBe(3);
    expect(r.err).toContain('you have no active grant on box');
    expect(r.err).toContain('sallyport request box --level exec-only');
  });

  it('refuses a target whose host key differs from the pinned one, audited, no session', async () => {
    const grantId = await grant('alice', 'box-impostor', 'shell');
    const term = openTerminal(tokens.alice);
    term.send(exec('box-impostor', grantId, 'true'));
    const { code, frame } = await term.closed;
    expect(code).toBe(1011);
    expect(frame?.code).toBe('host_key_mismatch');
    const notice = notices(term).find((n) => n.code === 'host_key_mismatch');
    expect(notice?.message).toContain(sshd.hostKeyFingerprint);
    expect(has('ready')(term.frames)).toBe(false);
    const audit = (await ledger('ssh.host_key_mismatch')).filter((e) => e.target_id === 'box-impostor');
    expect(audit).toHaveLength(1);
    expect(audit[0]?.data).toMatchObject({ presentedFingerprint: sshd.hostKeyFingerprint, grantId });
    expect((await ledger('session.started')).some((e) => e.target_id === 'box-impostor')).toBe(false);
  });

  it('reports a credential the target refuses as auth_failed', async () => {
    const grantId = await grant('alice', 'box-stranger', 'exec-only');
    const term = openTerminal(tokens.alice);
    term.send(exec('box-stranger', grantId, 'true'));
    const { frame } = await term.closed;
    expect(frame?.code).toBe('auth_failed');
    expect(notices(term)[0]).toMatchObject({ level: 'error', code: 'auth_failed' });
    expect(
      (await ledger('ssh.connect_failed')).some(
        (e) => e.target_id === 'box-stranger' && e.data.code === 'auth_failed',
      ),
    ).toBe(true);

    const cli = await runCli(['ssh', 'box-stranger', '--', 'true'], 'alice');
    expect(cli.code).toBe(255);
    expect(cli.err).toContain("refused the gateway's credential");
  });

  it('reports a target nobody listens on as target_unreachable', async () => {
    const grantId = await grant('alice', 'box-down', 'exec-only');
    const term = openTerminal(tokens.alice);
    term.send(exec('box-down', grantId, 'true'));
    const { frame } = await term.closed;
    expect(frame?.code).toBe('target_unreachable');
    expect(notices(term)[0]?.message).toMatch(/cannot reach box-down/);
  });

  it('refuses without a grant, with a revoked grant, and a shell under exec-only', async () => {
    const mine = await grant('alice', 'box', 'shell');
    const foreign = openTerminal(tokens.bob);
    foreign.send(shell('box', mine));
    expect((await foreign.closed).frame?.code).toBe('no_grant');

    const revokedId = await grant('alice', 'box', 'shell');
    await api.alice.revoke(revokedId, 'not needed any more');
    const revoked = openTerminal(tokens.alice);
    revoked.send(shell('box', revokedId));
    const r = await revoked.closed;
    expect(r.code).toBe(4403);
    expect(r.frame?.code).toBe('grant_revoked');

    const execOnly = await grant('alice', 'box', 'exec-only');
    const interactive = openTerminal(tokens.alice);
    interactive.send(shell('box', execOnly));
    const e = await interactive.closed;
    expect(e.frame?.code).toBe('exec_only');
    expect(notices(interactive)[0]?.message).toContain('exec-only');
    const refused = await ledger('access.refused');
    expect(refused.some((x) => x.data.code === 'exec_only' && x.data.grantId === execOnly)).toBe(true);
    expect(refused.some((x) => x.actor === 'bob' && x.data.code === 'no_grant')).toBe(true);

    const anonymous = openTerminal(undefined);
    anonymous.send(shell('box', mine));
    await anonymous.waitFor('unauthenticated notice', () =>
      notices(anonymous).some((n) => n.code === 'unauthenticated'),
    );
    anonymous.send({ type: 'auth', token: 'not-a-token' });
    expect((await anonymous.closed).code).toBe(4401);
  });

  it('answers malformed frames with a notice naming the problem, and keeps going', async () => {
    const grantId = await grant('alice', 'box', 'exec-only');
    const term = openTerminal(tokens.alice);
    term.send('{not json');
    term.send({
      type: 'open',
      targetId: 'box',
      grantId,
      mode: 'exec',
      cols: 80,
      rows: 24,
    } as TerminalClientMessage);
    term.send({ type: 'input', data: 'aGk=' });
    term.ws.once('open', () => term.ws.send(Buffer.from([1, 2, 3]), { binary: true }));
    await term.waitFor('four notices', () => notices(term).length >= 4);
    const messages = notices(term).map((n) => `${n.code}: ${n.message}`);
    expect(messages.join('\n')).toContain('bad_frame: frame is not valid JSON');
    expect(messages.join('\n')).toContain('command: exec needs a command');
    expect(messages.join('\n')).toContain('not_open');
    expect(messages.join('\n')).toContain('binary frames are not accepted');
    term.send(exec('box', grantId, 'echo still-$((1+1))'));
    await term.closed;
    expect(term.stdout()).toBe('still-2\n');
  });

  it('closes a live session when its grant is revoked', async () => {
    const grantId = await grant('alice', 'box', 'shell');
    const term = openTerminal(tokens.alice);
    term.send(shell('box', grantId));
    await term.waitFor('ready', has('ready'));
    term.input('echo live-$((1+2))\r');
    await term.waitFor('live-3', () => term.stdout().includes('live-3'));
    expect(t.gw.sessions.count(grantId)).toBe(1);

    const revoked = await api.alice.revoke(grantId, 'incident 7');
    expect(revoked).toMatchObject({ status: 'revoked', revocation: 'completed' });
    const { code, frame } = await term.closed;
    expect(code).toBe(4410);
    expect(frame).toMatchObject({ code: 'revoked' });
    const text = 'Your access grant was revoked (incident 7); the session is closed.';
    expect(term.stdout()).toContain(text);
    expect(notices(term).at(-1)).toMatchObject({ code: 'revoked', message: text });

    const sessionId = (term.frames.find((f) => f.type === 'ready') as { sessionId: string }).sessionId;
    const ended = (await ledger('session.ended')).find((e) => e.data.sessionId === sessionId);
    expect(ended?.data).toMatchObject({ reason: 'revoked', grantId });
    const completed = (await ledger('revocation.completed')).find((e) => e.data.grantId === grantId);
    expect(completed?.data.sessionsClosed).toBe(1);
  });

  it('closes a live session when its grant expires', async () => {
    const grantId = await grant('alice', 'box', 'shell', 3);
    const term = openTerminal(tokens.alice);
    term.send(shell('box', grantId));
    await term.waitFor('ready', has('ready'));
    const { code, frame } = await term.closed;
    expect(code).toBe(4410);
    expect(frame).toMatchObject({ code: 'expired' });
    expect(term.stdout()).toContain('Your access grant has expired; the session is closed.');
    const sessionId = (term.frames.find((f) => f.type === 'ready') as { sessionId: string }).sessionId;
    await expect
      .poll(async () => (await ledger('session.ended')).find((e) => e.data.sessionId === sessionId)?.data)
      .toMatchObject({ reason: 'expired', grantId });
    await expect
      .poll(
        async () =>
          (await ledger('revocation.completed')).find((e) => e.data.grantId === grantId)?.data.sessionsClosed,
      )
      .toBe(1);
  });

  it('ends the session when the client goes away', async () => {
    const grantId = await grant('alice', 'box', 'shell');
    const term = openTerminal(tokens.alice);
    term.send(shell('box', grantId));
    await term.waitFor('ready', has('ready'));
    const sessionId = (term.frames.find((f) => f.type === 'ready') as { sessionId: string }).sessionId;
    term.ws.close();
    await expect
      .poll(async () => (await ledger('session.ended')).find((e) => e.data.sessionId === sessionId)?.data)
      .toMatchObject({ reason: 'client_closed', grantId });
    expect(t.gw.sessions.count(grantId)).toBe(0);
  });

  it('holds a flood of output back for a slow reader instead of buffering it', async () => {
    const grantId = await grant('alice', 'box', 'exec-only');
    const doneFile = path.join(sshd.dir, 'flood-done');
    let received = 0;
    let outputFrames = 0;
    const term = openTerminal(tokens.alice, {
      keep: false,
      onFrame: (f) => {
        if (f.type === 'output') {
          received += Buffer.from(f.data, 'base64').length;
          outputFrames++;
        }
      },
    });
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 50);
    term.send(exec('box', grantId, `head -c 20000000 /dev/zero | base64; touch ${doneFile}`));
    await term.waitFor('ready', has('ready'));
    // The reader stalls: nothing is read for 3 s.
    term.ws.pause();
    await new Promise((r) => setTimeout(r, 3000));
    const stalledAt = received;
    const finishedWhileStalled = existsSync(doneFile);
    // Then reads slowly: 20 ms of every 80 ms.
    const reader = setInterval(() => {
      term.ws.resume();
      setTimeout(() => term.ws.pause(), 20);
    }, 80);
    const started = Date.now();
    const { frame } = await term.closed;
    clearInterval(reader);
    clearInterval(sampler);
    const growthMb = (peak - before) / 1024 / 1024;
    console.log(
      `flood: ${received} bytes in ${outputFrames} frames; drained in ${Date.now() - started} ms after a 3 s stall (${stalledAt} bytes read before it); rss before ${(before / 1048576).toFixed(0)} MB, peak growth ${growthMb.toFixed(1)} MB`,
    );
    expect(finishedWhileStalled).toBe(false);
    expect(frame?.code).toBe('exit');
    expect(term.frames.find((f) => f.type === 'exit')).toMatchObject({ code: 0 });
    // 20,000,000 bytes → 26,666,668 base64 characters in 76-character lines.
    expect(received).toBe(26_666_668 + Math.ceil(26_666_668 / 76));
    expect(existsSync(doneFile)).toBe(true);
    expect(growthMb).toBeLessThan(200);
  });

  it('stops reading client input while the target does not read, and loses none of it', async () => {
    const grantId = await grant('alice', 'box', 'exec-only');
    const term = openTerminal(tokens.alice);
    term.send(exec('box', grantId, 'sleep 2; wc -c'));
    await term.waitFor('ready', has('ready'));
    const chunk = Buffer.alloc(192 * 1024, 0x61).toString('base64');
    for (let i = 0; i < 48; i++) term.send({ type: 'input', data: chunk });
    term.send({ type: 'eof' });
    const { frame } = await term.closed;
    expect(frame?.code).toBe('exit');
    expect(term.stdout().trim()).toBe(String(48 * 192 * 1024));
  });

  it('never sends the target credential in any frame, log line or audit event', async () => {
    const secrets = [sshd.clientPrivateKey, strangerClient.private]
      .flatMap((k) => k.split('\n'))
      .map((l) => l.trim())
      .filter((l) => l.length >= 12 && !l.startsWith('-----'));
    expect(secrets.length).toBeGreaterThan(2);
    const ledgerText = JSON.stringify(await t.gw.ledger.list({ limit: 100_000 }));
    const logText = JSON.stringify(t.logs);
    expect(seen.length).toBeGreaterThan(20);
    for (const s of secrets) {
      expect(seen.some((f) => f.includes(s))).toBe(false);
      expect(ledgerText.includes(s)).toBe(false);
      expect(logText.includes(s)).toBe(false);
    }
  });
});
