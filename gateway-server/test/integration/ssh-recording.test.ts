// Masking and recording of SSH sessions, against a real OpenSSH sshd: secrets cut
// across output chunks are masked, typing is not delayed, the asciicast recording
// replays to the screen the user saw, is hashed into the ledger and verified when
// served, holds no secret the user saw masked, and a session that cannot be
// recorded does not start.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TerminalClientMessage, TerminalServerMessage } from '@sallyport/protocol';
import xterm from '@xterm/headless';
import { utils } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { main } from '../../src/cli/main';
import type { Io } from '../../src/cli/output';
import { type RunningSshd, startSshd } from '../../src/devstack';
import { createMasker, FULL_MASK } from '../../src/masking';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { hasSshd } from '../rig/sshd';
import { recordTranscript, registerSecret } from '../rig/transcript';

const { Terminal } = xterm;
const REASON = 'checking what the recording keeps of a session';
const CARD = '4111 1111 1111 1111';
const CARD_MASKED = '•••• •••• •••• 1111';
const PASTED_CARD = '5555-5555-5555-4444';
const EMAIL = 'alice.smith@example.com';
/** The partial strategy does not depend on the hash key. */
const EMAIL_MASKED = createMasker({}, Buffer.alloc(32)).maskText(EMAIL).text;
/** A private key nobody uses, printed by the target in two halves. */
const KEY = utils.generateKeyPairSync('ed25519').private;
const KEY_LINES = KEY.split('\n')
  .map((l) => l.trim())
  .filter((l) => l.length >= 12 && !l.startsWith('-----'));

let sshd: RunningSshd;
let t: TestGateway;
let home: string;
let token = '';
let emailScript = '';
let keyScript = '';

type Frame = TerminalServerMessage;
type CastEvent = [number, string, string];

interface Term {
  frames: Frame[];
  send(m: TerminalClientMessage): void;
  input(text: string): void;
  stdout(): string;
  /** The raw bytes of every stdout frame, in order. */
  stdoutBytes(): Buffer;
  waitFor(what: string, pred: () => boolean, ms?: number): Promise<void>;
  sessionId(): string;
  closed: Promise<{ code: number; frame?: Extract<Frame, { type: 'closed' }> }>;
}

function openTerminal(): Term {
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/terminal`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (d: Buffer) => {
    const text = d.toString('utf8');
    recordTranscript('terminal', text);
    frames.push(JSON.parse(text) as Frame);
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
  const stdoutBytes = () =>
    Buffer.concat(
      frames.flatMap((f) =>
        f.type === 'output' && f.stream === 'stdout' ? [Buffer.from(f.data, 'base64')] : [],
      ),
    );
  return {
    frames,
    send(m) {
      void opened.then(() => ws.send(JSON.stringify(m)));
    },
    input(text) {
      this.send({ type: 'input', data: Buffer.from(text).toString('base64') });
    },
    stdout: () => stdoutBytes().toString('utf8'),
    stdoutBytes,
    waitFor(what, pred, ms = 15_000) {
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
            new Error(`timed out waiting for ${what}; stdout: ${JSON.stringify(stdoutBytes().toString())}`),
          );
        }, ms);
        waiters.add(check);
      });
    },
    sessionId() {
      const ready = frames.find((f) => f.type === 'ready');
      if (ready?.type !== 'ready') throw new Error('no ready frame');
      return ready.sessionId;
    },
    closed,
  };
}

async function grant(level: 'shell' | 'exec-only') {
  const out = await t.client(token).requestAccess({ targetId: 'box', level, duration: '1h', reason: REASON });
  if (out.outcome !== 'granted') throw new Error(`expected a grant, got ${out.outcome}`);
  return out.grant.id;
}

async function shell(): Promise<Term> {
  const grantId = await grant('shell');
  const term = openTerminal();
  term.send({ type: 'open', targetId: 'box', grantId, mode: 'shell', cols: 80, rows: 24 });
  await term.waitFor('ready', () => term.frames.some((f) => f.type === 'ready'));
  return term;
}

/** Runs a command in the shell and waits for the marker it prints after it. */
async function run(term: Term, command: string, marker: string) {
  const before = term.stdout().split(marker).length;
  term.input(`${command}; echo ${marker.slice(0, 3)}''${marker.slice(3)}\r`);
  await term.waitFor(marker, () => term.stdout().split(marker).length > before);
}

async function exitShell(term: Term) {
  term.input('exit\r');
  const closed = await term.closed;
  expect(closed.frame?.code).toBe('exit');
}

/** The recording once it is complete (hashed, in the ledger). */
async function recording(sessionId: string) {
  await expect
    .poll(async () => (await t.gw.recordings.get(sessionId))?.status, { timeout: 10_000 })
    .toBe('complete');
  const row = (await t.gw.recordings.get(sessionId))!;
  const file = path.join(t.gw.recordings.dir, row.file);
  const text = readFileSync(file, 'utf8');
  const [head, ...rest] = text.trimEnd().split('\n');
  const events = rest.map((l) => JSON.parse(l) as CastEvent);
  return {
    row,
    file,
    text,
    header: JSON.parse(head!) as Record<string, unknown>,
    events,
    output: events
      .filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join(''),
    input: events
      .filter((e) => e[1] === 'i')
      .map((e) => e[2])
      .join(''),
  };
}

async function runCli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s) };
  const code = await main(argv, io, {
    SALLYPORT_HOME: home,
    SALLYPORT_GATEWAY: t.url,
    SALLYPORT_TOKEN: token,
  });
  return { code, out: out.join(''), err: err.join('') };
}

async function screen(data: Array<string | Uint8Array>, cols = 80, rows = 24) {
  const term = new Terminal({ cols, rows, allowProposedApi: true });
  for (const d of data) await new Promise<void>((resolve) => term.write(d, resolve));
  const buf = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
  return { term, lines, cursor: [buf.cursorX, buf.cursorY] };
}

const sessions: Record<'secrets' | 'replay' | 'complete', string> = { secrets: '', replay: '', complete: '' };

describe.skipIf(!hasSshd)('SSH masking and recording', () => {
  beforeAll(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'sallyport-rec-cli-'));
    sshd = await startSshd();
    registerSecret(KEY);
    registerSecret(CARD);
    registerSecret(EMAIL);
    // Scripts on the target, so the secrets appear only in the output, not in the typed command line.
    emailScript = path.join(sshd.dir, 'email.sh');
    writeFileSync(
      emailScript,
      `printf 'mail ${EMAIL.slice(0, 15)}'; sleep 0.3; printf '${EMAIL.slice(15)} now\\n'\n`,
    );
    // The key in two halves, cut in the middle of a line, printed with a pause between them.
    const half = Math.floor(KEY.length / 2);
    writeFileSync(path.join(sshd.dir, 'key1'), KEY.slice(0, half));
    writeFileSync(path.join(sshd.dir, 'key2'), KEY.slice(half));
    keyScript = path.join(sshd.dir, 'key.sh');
    writeFileSync(keyScript, `cat ${sshd.dir}/key1; sleep 0.3; cat ${sshd.dir}/key2\n`);
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
            labels: { env: 'prod' },
            credential: { privateKey: sshd.clientPrivateKey },
          },
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
    token = await t.token('alice');
  });
  afterAll(async () => {
    await t?.stop();
    await sshd?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('(a) masks a card, an e-mail and a private key cut across output chunks', async () => {
    const term = await shell();
    sessions.secrets = term.sessionId();
    term.input(`printf '4111 1111'; sleep 0.3; printf ' 1111 1111\\n'\r`);
    await term.waitFor('the masked card', () => term.stdout().includes(CARD_MASKED));
    term.input(`sh ${emailScript}\r`);
    await term.waitFor('the masked e-mail', () => term.stdout().includes(EMAIL_MASKED));
    await run(term, `sh ${keyScript}`, 'key-done');
    // A secret pasted as input: the echo is masked on screen, and the input event in the recording.
    await run(term, `echo '${PASTED_CARD}' >/dev/null`, 'paste-done');
    await exitShell(term);

    const out = term.stdout();
    expect(out).not.toContain(CARD);
    expect(out).not.toContain(EMAIL);
    expect(out).not.toContain(PASTED_CARD);
    for (const line of KEY_LINES) expect(out).not.toContain(line);
    expect(out).toContain(CARD_MASKED);
    expect(out).toContain(`mail ${EMAIL_MASKED} now`);
    expect(out).toContain(FULL_MASK);
    expect(out).toContain('••••-••••-••••-4444');

    // Exec (exact mode) gets the same result.
    const grantId = await grant('exec-only');
    const exec = openTerminal();
    exec.send({
      type: 'open',
      targetId: 'box',
      grantId,
      mode: 'exec',
      command: `printf '4111 1111'; sleep 0.3; printf ' 1111 1111\\n'; sh ${emailScript}`,
      cols: 80,
      rows: 24,
    });
    expect((await exec.closed).frame?.code).toBe('exit');
    expect(exec.stdout()).toBe(`${CARD_MASKED}\nmail ${EMAIL_MASKED} now\n`);
  });

  it('(b) does not hold back typed letters, and releases a held word when output goes idle', async () => {
    const term = await shell();
    await run(term, 'true', 'prompt-ready');
    await term.waitFor('the prompt', () => /[#$] $/.test(term.stdout()));
    const t0 = Date.now();
    for (const ch of 'echo abc') {
      term.input(ch);
      await new Promise((r) => setTimeout(r, 20));
    }
    // The echo is on screen before Enter: plain letters are not held.
    await term.waitFor('the typed echo', () => term.stdout().endsWith('echo abc'), 2000);
    expect(Date.now() - t0).toBeLessThan(2000);
    term.input('\r');
    await term.waitFor('abc', () => /\rabc\r\n/.test(term.stdout()));

    // A long chunk ending in a word (it could become an e-mail's local part) is held, then drained
    // after ~50 ms of silence, while the command is still running.
    term.input(`s=$(printf '%0150d' 0 | tr 0 x); printf "$s m%s" arker; sleep 2; echo; echo fin-$((1+1))\r`);
    const sent = Date.now();
    await term.waitFor('the drained word', () => term.stdout().includes('x marker'), 1500);
    expect(Date.now() - sent).toBeLessThan(1500);
    expect(term.stdout()).not.toContain('fin-2');
    await term.waitFor('fin-2', () => term.stdout().includes('fin-2'));
    await exitShell(term);
  });

  it('(c) replays to the same screen the user saw', async () => {
    const term = await shell();
    sessions.replay = term.sessionId();
    await run(term, `printf '\\033[31mred\\033[0m plain\\n'`, 'colour-done');
    await run(term, 'ls / | head -5', 'ls-done');
    await run(term, `printf '\\033[3;40Hmoved here\\033[1B\\033[2Dbelow\\n'`, 'move-done');
    await run(term, `printf '\\033[1;33mbold yellow\\033[0m and \\033[42mgreen bg\\033[0m\\n'`, 'more-done');
    await exitShell(term);

    const rec = await recording(sessions.replay);
    const live = await screen([term.stdoutBytes()]);
    const replayed = await screen(rec.events.filter((e) => e[1] === 'o').map((e) => e[2]));
    expect(replayed.lines).toEqual(live.lines);
    expect(replayed.cursor).toEqual(live.cursor);
    expect(rec.output).toBe(term.stdout());
    expect(live.lines.join('\n')).toContain('red plain');
    expect(live.lines.join('\n')).toContain('moved here');
    // Colours survive: the cell of "red" is drawn in palette colour 1 in the replay.
    const buf = replayed.term.buffer.active;
    let found = false;
    for (let y = 0; y < buf.length && !found; y++) {
      const line = buf.getLine(y);
      const x = line?.translateToString(true).indexOf('red plain') ?? -1;
      if (line && x >= 0) {
        const cell = line.getCell(x);
        expect(cell?.isFgPalette()).toBeTruthy();
        expect(cell?.getFgColor()).toBe(1);
        found = true;
      }
    }
    expect(found).toBe(true);
  });

  it("(c) a revoked session replays to the same screen, the gateway's closing line included", async () => {
    const grantId = await grant('shell');
    const term = openTerminal();
    term.send({ type: 'open', targetId: 'box', grantId, mode: 'shell', cols: 80, rows: 24 });
    await term.waitFor('ready', () => term.frames.some((f) => f.type === 'ready'));
    await run(term, 'echo before-revoke', 'rev-done');
    await t.client(token).revoke(grantId, 'incident 9');
    const closed = await term.closed;
    expect(closed.frame?.code).toBe('revoked');
    const line = 'Your access grant was revoked (incident 9); the session is closed.';
    expect(term.stdout()).toContain(line);

    const rec = await recording(term.sessionId());
    expect(rec.output).toBe(term.stdout());
    expect(rec.output.trimEnd().endsWith(`[sallyport] ${line}\x1b[0m`)).toBe(true);
    const live = await screen([term.stdoutBytes()]);
    const replayed = await screen(rec.events.filter((e) => e[1] === 'o').map((e) => e[2]));
    expect(replayed.lines).toEqual(live.lines);
  });

  it('(d) is complete, hashed into the ledger and served by the API', async () => {
    const term = await shell();
    sessions.complete = term.sessionId();
    await run(term, 'echo one-$((0+1))', 'one-done');
    term.send({ type: 'resize', cols: 100, rows: 30 });
    await run(term, 'stty size', 'size-done');
    expect(term.stdout()).toContain('30 100');
    await exitShell(term);

    const rec = await recording(sessions.complete);
    expect(rec.header).toMatchObject({
      version: 2,
      width: 80,
      height: 24,
      env: { TERM: 'xterm-256color' },
      title: 'box — alice',
    });
    expect(Math.abs((rec.header.timestamp as number) - Date.now() / 1000)).toBeLessThan(120);
    expect(rec.events.some((e) => e[1] === 'r' && e[2] === '100x30')).toBe(true);
    expect(rec.input).toContain('echo one-$((0+1))');
    expect(rec.output).toContain('one-1');
    expect(rec.output).toContain('30 100');
    const times = rec.events.map((e) => e[0]);
    expect(times).toEqual([...times].sort((a, b) => a - b));

    const sha = createHash('sha256').update(readFileSync(rec.file)).digest('hex');
    expect(rec.row.sha256).toBe(sha);
    expect(rec.row.bytes).toBe(readFileSync(rec.file).length);
    const closed = (await t.gw.ledger.list({ kind: 'recording.closed', limit: 10_000 })).find(
      (e) => e.data.sessionId === sessions.complete,
    );
    expect(closed?.data).toMatchObject({ sha256: sha, kind: 'ssh' });
    const ended = (await t.gw.ledger.list({ kind: 'session.ended', limit: 10_000 })).find(
      (e) => e.data.sessionId === sessions.complete,
    );
    // The recording is closed and in the ledger before the session is recorded as ended.
    expect(Number(closed?.seq)).toBeLessThan(Number(ended?.seq));

    const res = await fetch(`${t.url}/api/recordings/${sessions.complete}/content`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-asciicast');
    expect(res.headers.get('x-sallyport-sha256')).toBe(sha);
    expect(await res.text()).toBe(rec.text);
  });

  it('(e) keeps no raw secret the user saw masked', async () => {
    const rec = await recording(sessions.secrets);
    for (const text of [rec.text, rec.output, rec.input]) {
      expect(text).not.toContain(CARD);
      expect(text).not.toContain(EMAIL);
      expect(text).not.toContain(PASTED_CARD);
      for (const line of KEY_LINES) expect(text).not.toContain(line);
    }
    expect(rec.output).toContain(CARD_MASKED);
    expect(rec.output).toContain(`mail ${EMAIL_MASKED} now`);
    expect(rec.output).toContain(FULL_MASK);
    // The pasted card was sent to the target as typed, and recorded masked.
    expect(rec.input).toContain("echo '••••-••••-••••-4444' >/dev/null");
  });

  it('(f) `sallyport replay` prints the cast (--raw) and plays it', async () => {
    const rec = await recording(sessions.complete);
    const raw = await runCli(['replay', sessions.complete, '--raw']);
    expect(raw.code, raw.err).toBe(0);
    expect(raw.out).toBe(rec.text);

    const started = Date.now();
    const played = await runCli(['replay', sessions.complete, '--speed', '50']);
    expect(played.code, played.err).toBe(0);
    expect(played.out).toBe(rec.output);
    expect(played.err).toContain('box — alice');
    expect(Date.now() - started).toBeLessThan(5000);

    const bad = await runCli(['replay', sessions.complete, '--speed', '0']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('positive number');
  });

  it('(d) a recording edited on disk is refused: 409 recording_tampered, and by the CLI', async () => {
    const rec = await recording(sessions.replay);
    const bytes = readFileSync(rec.file);
    const at = bytes.indexOf('plain');
    bytes[at] = 'P'.charCodeAt(0);
    writeFileSync(rec.file, bytes);

    const res = await fetch(`${t.url}/api/recordings/${sessions.replay}/content`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('recording_tampered');

    const cli = await runCli(['replay', sessions.replay, '--raw']);
    expect(cli.code).toBe(4);
    expect(cli.out).toBe('');
    expect(cli.err).toContain('failed verification');
  });

  it('closes a session whose recording fails while it runs', async () => {
    const catalog = t.gw.recordings;
    const realStart = catalog.start;
    let fail: ((err: Error) => void) | undefined;
    // A disk that fills up mid-session: the writer reports the error, and its close fails.
    catalog.start = async (meta) => {
      const rec = await realStart.call(catalog, meta);
      const onError = rec.onError;
      const close = rec.close;
      rec.onError = (fn) => {
        fail = fn;
        onError(fn);
      };
      rec.close = async () => {
        await close();
        throw new Error('recording could not be written: ENOSPC');
      };
      return rec;
    };
    try {
      const term = await shell();
      await run(term, 'echo before', 'before-done');
      fail?.(new Error('ENOSPC: no space left on device'));
      const { code, frame } = await term.closed;
      expect(code).toBe(1011);
      expect(frame?.code).toBe('error');
      expect(term.frames.some((f) => f.type === 'notice' && f.code === 'recording_failed')).toBe(true);
      expect(term.stdout()).toContain('The session recording could not be written; the session is closed.');
      const sessionId = term.sessionId();
      await expect
        .poll(
          async () =>
            (await t.gw.ledger.list({ kind: 'session.ended', limit: 10_000 })).find(
              (e) => e.data.sessionId === sessionId,
            )?.data,
        )
        .toMatchObject({ reason: 'error' });
      expect((await t.gw.recordings.get(sessionId))?.status).toBe('failed');
      const failed = await t.gw.ledger.list({ kind: 'recording.failed', limit: 10_000 });
      expect(failed.some((e) => e.data.sessionId === sessionId)).toBe(true);
    } finally {
      catalog.start = realStart;
    }
  });

  it('(g) refuses a session it cannot record: recording_unavailable, no session.started', async () => {
    const dir = t.gw.recordings.dir;
    const started = (await t.gw.ledger.list({ kind: 'session.started', limit: 10_000 })).length;
    renameSync(dir, `${dir}.moved`);
    writeFileSync(dir, 'not a directory');
    try {
      const grantId = await grant('shell');
      const term = openTerminal();
      term.send({ type: 'open', targetId: 'box', grantId, mode: 'shell', cols: 80, rows: 24 });
      const { code, frame } = await term.closed;
      expect(code).toBe(1011);
      expect(frame?.code).toBe('recording_unavailable');
      expect(term.frames.some((f) => f.type === 'notice' && f.code === 'recording_unavailable')).toBe(true);
      expect(term.frames.some((f) => f.type === 'ready')).toBe(false);
      expect((await t.gw.ledger.list({ kind: 'session.started', limit: 10_000 })).length).toBe(started);
      const refused = await t.gw.ledger.list({ kind: 'access.refused', limit: 10_000 });
      expect(refused.some((e) => e.data.code === 'recording_unavailable' && e.data.grantId === grantId)).toBe(
        true,
      );
    } finally {
      rmSync(dir, { force: true });
      renameSync(`${dir}.moved`, dir);
    }
    // Recording works again once the directory is back.
    const term = await shell();
    await run(term, 'echo back', 'back-done');
    await exitShell(term);
    expect((await recording(term.sessionId())).output).toContain('back-done');
  });
});
