// Shell guardrails on SSH sessions (protocols/ssh/guard-filter.ts), against a real OpenSSH sshd:
// exec commands decided before they run (block, review → approve/deny), interactive lines held at
// Enter (block, paste, Ctrl-C, pipe-to-shell). The built-in rules only: they are on by default.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { GatewayClient, TerminalClientMessage, TerminalServerMessage } from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { main } from '../../src/cli/main';
import type { Io } from '../../src/cli/output';
import { type RunningSshd, startSshd } from '../../src/devstack';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { hasSshd } from '../rig/sshd';

type Frame = TerminalServerMessage;

let sshd: RunningSshd;
let t: TestGateway;
let home: string;
const tokens = { alice: '', bob: '' };
const api = {} as Record<'alice' | 'bob', GatewayClient>;

function openTerminal(token: string) {
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/terminal`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (d: Buffer) => {
    frames.push(JSON.parse(d.toString('utf8')) as Frame);
    for (const w of waiters) w();
  });
  const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const stdout = () =>
    Buffer.concat(
      frames.flatMap((f) =>
        f.type === 'output' && f.stream === 'stdout' ? [Buffer.from(f.data, 'base64')] : [],
      ),
    ).toString('utf8');
  const notices = () => frames.filter((f): f is Extract<Frame, { type: 'notice' }> => f.type === 'notice');
  return {
    frames,
    stdout,
    notices,
    closed,
    send(m: TerminalClientMessage) {
      void opened.then(() => ws.send(JSON.stringify(m)));
    },
    input(text: string) {
      this.send({ type: 'input', data: Buffer.from(text).toString('base64') });
    },
    waitFor(what: string, pred: () => boolean, ms = 15_000) {
      return new Promise<void>((resolve, reject) => {
        if (pred()) return resolve();
        const check = () => {
          if (!pred()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `timed out waiting for ${what}; frames: ${JSON.stringify(frames.slice(-6)).slice(0, 1500)}`,
            ),
          );
        }, ms);
        waiters.add(check);
      });
    },
    close: () => ws.close(),
  };
}

async function runCli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s) };
  const code = await main(argv, io, {
    SALLYPORT_HOME: home,
    SALLYPORT_GATEWAY: t.url,
    SALLYPORT_TOKEN: tokens.alice,
  });
  return { code, out: out.join(''), err: err.join('') };
}

async function grant() {
  const out = await api.alice.requestAccess({
    targetId: 'box',
    level: 'shell',
    duration: '1h',
    reason: 'checking the guardrails on the box',
  });
  if (out.outcome !== 'granted') throw new Error(`expected a grant, got ${out.outcome}`);
  return out.grant.id;
}

/** The pending review for `text` in bob's inbox. */
async function pendingReview(text: string) {
  let id = '';
  await expect
    .poll(
      async () => {
        const r = (await api.bob.reviews({ scope: 'inbox', status: 'pending' })).find((x) => x.text === text);
        id = r?.id ?? '';
        return id;
      },
      { timeout: 10_000 },
    )
    .not.toBe('');
  return id;
}

async function shellSession() {
  const grantId = await grant();
  const term = openTerminal(tokens.alice);
  term.send({ type: 'open', targetId: 'box', grantId, mode: 'shell', cols: 120, rows: 30 });
  await term.waitFor('ready', () => term.frames.some((f) => f.type === 'ready'));
  term.input('echo rea""dy-$((1+1))\r');
  await term.waitFor('prompt', () => term.stdout().includes('ready-2'));
  return term;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasSshd)('SSH shell guardrails', () => {
  beforeAll(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'sallyport-ssh-guard-'));
    sshd = await startSshd();
    t = await startTestGateway({
      config: {
        targets: [
          {
            id: 'box',
            kind: 'ssh',
            host: sshd.host,
            port: sshd.port,
            user: sshd.user,
            hostKey: sshd.hostPublicKey,
            // No label or config needed: the built-in shell rules apply to every SSH target.
            labels: { env: 'prod' },
            credential: { privateKey: sshd.clientPrivateKey },
          },
        ],
        access: {
          reviewTimeout: '30s',
          reviewers: { users: ['bob'] },
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

  describe('exec', () => {
    beforeAll(async () => {
      await grant();
    });
    it('blocks a destructive command before anything reaches the target', async () => {
      const marker = `/tmp/m-${randomUUID()}`;
      const cmd = `touch ${marker} && shutdown -h now`;
      const r = await runCli(['ssh', 'box', '--', cmd]);
      expect(r.code).toBe(8);
      expect(r.err).toContain('shutdown');
      expect(r.err).toContain(marker);
      await sleep(300);
      expect(existsSync(marker)).toBe(false);
      const ev = (await t.gw.ledger.list({ kind: 'ssh.blocked', limit: 100 })).find(
        (e) => e.data.text === cmd,
      );
      expect(ev?.data).toMatchObject({ rule: 'shutdown', mode: 'exec' });
    });

    it('runs a reviewed command once an approver approves it', async () => {
      const marker = `/tmp/m-${randomUUID()}`;
      const cmd = `sudo -n true; touch ${marker}`;
      const run = runCli(['ssh', 'box', '--', cmd]);
      const id = await pendingReview(cmd);
      expect(existsSync(marker)).toBe(false);
      await api.bob.approveReview(id, 'fine');
      const r = await run;
      expect(r.err).toContain('waiting for approval');
      expect(existsSync(marker)).toBe(true);
      rmSync(marker, { force: true });
    });

    it('refuses a denied command with the reason and exit code 8', async () => {
      const marker = `/tmp/m-${randomUUID()}`;
      const cmd = `sudo true; touch ${marker}`;
      const run = runCli(['ssh', 'box', '--', cmd]);
      const id = await pendingReview(cmd);
      await api.bob.denyReview(id, 'not during the freeze');
      const r = await run;
      expect(r.code).toBe(8);
      expect(r.err).toContain('not during the freeze');
      expect(existsSync(marker)).toBe(false);
    });
  });

  describe('interactive', () => {
    it('blocks a typed line at Enter; the session goes on', async () => {
      const term = await shellSession();
      const marker = `/tmp/m2-${randomUUID()}`;
      term.input(`touch ${marker}; reboot`);
      await sleep(200);
      term.input('\r');
      await term.waitFor('blocked', () => term.notices().some((n) => n.code === 'blocked'));
      expect(term.notices().find((n) => n.code === 'blocked')?.message).toContain('shutdown');
      term.input('echo o""k-$((2+3))\r');
      await term.waitFor('ok-5', () => term.stdout().includes('ok-5'));
      expect(existsSync(marker)).toBe(false);
      term.close();
    });

    it('decides each line of a paste: the blocked second line does not run', async () => {
      const term = await shellSession();
      const m1 = `/tmp/m3-${randomUUID()}`;
      const m2 = `/tmp/m4-${randomUUID()}`;
      term.input(`touch ${m1}\rtouch ${m2}; rm -rf /\r`);
      await term.waitFor('blocked', () => term.notices().some((n) => n.code === 'blocked'));
      term.input('echo af""ter-$((3+4))\r');
      await term.waitFor('after-7', () => term.stdout().includes('after-7'));
      expect(existsSync(m1)).toBe(true);
      expect(existsSync(m2)).toBe(false);
      rmSync(m1, { force: true });
      term.close();
    });

    it('Ctrl-C abandons a line without evaluating it', async () => {
      const term = await shellSession();
      term.input('reboot');
      await sleep(100);
      term.input('\x03');
      term.input('echo c""c-$((4+4))\r');
      await term.waitFor('cc-8', () => term.stdout().includes('cc-8'));
      expect(term.notices().filter((n) => n.code === 'blocked')).toEqual([]);
      term.close();
    });

    it('blocks pipe-to-shell through quoting', async () => {
      const term = await shellSession();
      term.input('cu""rl x | sh\r');
      await term.waitFor('blocked', () => term.notices().some((n) => n.code === 'blocked'));
      expect(term.notices().find((n) => n.code === 'blocked')?.message).toContain('pipe-to-shell');
      term.input('echo st""ill-$((5+4))\r');
      await term.waitFor('still-9', () => term.stdout().includes('still-9'));
      term.close();
    });

    it('sends a held line once an approver approves that exact line', async () => {
      const term = await shellSession();
      const marker = `/tmp/m7-${randomUUID()}`;
      const line = `sudo -n true; touch ${marker}`;
      try {
        // The approval is checked against the line on the screen, which starts after the prompt:
        // type once the prompt is drawn, as a person would.
        await term.waitFor('the prompt', () => /ready-2\r\n[\s\S]*# $/.test(term.stdout()));
        term.input(`${line}\r`);
        const id = await pendingReview(line);
        expect(existsSync(marker)).toBe(false); // held: nothing reached the target yet
        await api.bob.approveReview(id, 'go ahead');
        await term.waitFor('approved', () => term.notices().some((n) => n.code === 'approved'));
        await expect.poll(() => existsSync(marker), { timeout: 10_000 }).toBe(true);
      } finally {
        rmSync(marker, { force: true });
        term.close();
      }
    });

    it('clears a denied line', async () => {
      const term = await shellSession();
      const marker = `/tmp/m6-${randomUUID()}`;
      const line = `sudo -n true; touch ${marker}`;
      term.input(`${line}\r`);
      const id = await pendingReview(line);
      await api.bob.denyReview(id, 'not now, please');
      await term.waitFor('denied', () => term.notices().some((n) => n.code === 'review_denied'));
      term.input('echo de""nied-$((1+6))\r');
      await term.waitFor('denied-7', () => term.stdout().includes('denied-7'));
      expect(existsSync(marker)).toBe(false);
      term.close();
    });
  });
});
