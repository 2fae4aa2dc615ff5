// The recording writer (blocks written and hashed on the I/O worker) and the SSH recording
// observer on top of it: the file holds exactly the lines written, hashes to what close() returns,
// is flushed while the session runs; output chunks close together become one event that still
// replays to the same screen, and every event stays in time order.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import xterm from '@xterm/headless';
import { afterAll, describe, expect, it } from 'vitest';
import { createMasker } from '../../src/masking';
import type { SessionInfo } from '../../src/protocols/ssh/filters';
import {
  COALESCE_BYTES,
  createRecordingObserver,
  RECORDING_BACKLOG_MAX,
} from '../../src/protocols/ssh/recording-observer';
import { openRecording } from '../../src/recording';

const dir = mkdtempSync(path.join(tmpdir(), 'sallyport-rec-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const open = (flushMs?: number) =>
  openRecording({ dir, name: `r${++seq}.cast`, ...(flushMs ? { flushMs } : {}) });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const masker = createMasker({}, new Uint8Array(32).fill(3));

describe('recording writer', () => {
  it('writes every line in order across blocks, and returns the hash and size of the file', async () => {
    const writers = await Promise.all([open(), open(), open()]);
    const want: string[][] = writers.map(() => []);
    for (let i = 0; i < 3000; i++) {
      writers.forEach((w, k) => {
        // Some lines larger than a block (256 KiB), most small; interleaved across three files.
        const line = i % 997 === 0 ? `big-${k}-${'x'.repeat(300_000)}` : `line ${k} ${i} é€`;
        if (i % 2 === 0) w.writeLine(line);
        else w.writeBytes(Buffer.from(`${line}\n`));
        want[k]!.push(line);
      });
    }
    const results = await Promise.all(writers.map((w) => w.close()));
    writers.forEach((w, k) => {
      const file = readFileSync(w.path);
      expect(file.toString('utf8')).toBe(`${want[k]!.join('\n')}\n`);
      expect(results[k]).toEqual({ sha256: sha256(file), bytes: file.length });
    });
  });

  it('flushes to the file while it is open, and its backlog drains', async () => {
    const w = await open(100);
    w.writeLine('{"version":2}');
    w.writeBytes(Buffer.from('[0.1,"o","hello"]\n'));
    expect(w.backlog).toBeGreaterThan(0);
    await expect.poll(() => statSync(w.path).size, { timeout: 3000 }).toBe(32);
    await expect.poll(() => w.backlog).toBe(0);
    const { bytes } = await w.close();
    expect(bytes).toBe(32);
    await expect(w.close()).rejects.toThrow('already closed');
  });
});

const info = (mode: 'shell' | 'exec'): SessionInfo => ({
  sessionId: `s${seq}`,
  targetId: 'box',
  grantId: 'g',
  username: 'alice',
  mode,
  ...(mode === 'exec' ? { command: 'make' } : {}),
  cols: 80,
  rows: 24,
});

async function observe(mode: 'shell' | 'exec', coalesceMs?: number) {
  const writer = await open();
  let clock = 1_000_000;
  let closed: { sha256: string; bytes: number } | undefined;
  const rec = createRecordingObserver({
    // The catalogue's finish() is close() plus the store and the ledger (integration tests).
    recording: Object.assign(writer, {
      finish: async () => {
        closed = await writer.close();
        return closed;
      },
    }),
    info: info(mode),
    masker,
    onFailure: (err) => {
      throw err;
    },
    now: () => clock,
    ...(coalesceMs !== undefined ? { coalesceMs } : {}),
  });
  const advance = (ms: number) => {
    clock += ms;
  };
  const events = () => {
    const [head, ...lines] = readFileSync(writer.path, 'utf8').trimEnd().split('\n');
    return { header: JSON.parse(head!), events: lines.map((l) => JSON.parse(l) as [number, string, string]) };
  };
  return { rec, writer, advance, events, closed: () => closed };
}

async function screen(chunks: Array<string | Uint8Array>) {
  const term = new xterm.Terminal({ cols: 80, rows: 24, allowProposedApi: true });
  for (const c of chunks) await new Promise<void>((resolve) => term.write(c, resolve));
  const buf = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
  return { lines, cursor: [buf.cursorX, buf.cursorY] };
}

describe('SSH recording observer', () => {
  it('joins output chunks close together into one event that replays to the same screen', async () => {
    const { rec, advance, events } = await observe('shell');
    // A burst of small chunks (a `ls --color` or a redraw), cut inside escapes and characters.
    const text =
      '\x1b[1;34mdir\x1b[0m  file.txt  \x1b[32mrun.sh\x1b[0m\r\n' +
      'naïve "quoted" back\\slash\ttab €\r\n\x1b[2;5H\x1b[7mmoved\x1b[0m\x1b[10;1H';
    const bytes = Buffer.from(text.repeat(20));
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.subarray(i, i + 7));
    for (const c of chunks) {
      rec.output!(c, 'stdout');
      advance(0.05);
    }
    advance(500);
    rec.input!(Buffer.from('ls -l\r'));
    advance(100);
    rec.output!(Buffer.from('after\r\n'), 'stdout');
    await rec.finish();

    const { events: ev } = events();
    const out = ev.filter((e) => e[1] === 'o');
    // 250-odd chunks in ~13 ms: a handful of events (8 ms windows), not one per chunk.
    expect(out.length).toBeGreaterThan(1);
    expect(out.length).toBeLessThan(6);
    expect(ev.map((e) => e[1])).toEqual([...out.slice(0, -1).map(() => 'o'), 'i', 'o']);
    expect(out.map((e) => e[2]).join('')).toBe(`${bytes.toString('utf8')}after\r\n`);
    const times = ev.map((e) => e[0]);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(ev.at(-1)![0]).toBeCloseTo((chunks.length * 0.05 + 600) / 1000, 2);
    const live = await screen([...chunks, Buffer.from('after\r\n')]);
    const replayed = await screen(out.map((e) => e[2]));
    expect(replayed).toEqual(live);
  });

  it('keeps events apart beyond the window and the size bound, and with coalescing off', async () => {
    const a = await observe('shell');
    a.rec.output!(Buffer.from('one'), 'stdout');
    a.advance(20);
    a.rec.output!(Buffer.from('two'), 'stdout');
    const big = Buffer.alloc(COALESCE_BYTES, 'b');
    a.rec.output!(big, 'stdout');
    a.rec.resize!(100, 30);
    await a.rec.finish();
    expect(a.events().events).toEqual([
      [0, 'o', 'one'],
      [0.02, 'o', 'two'],
      [0.02, 'o', big.toString()],
      [0.02, 'r', '100x30'],
    ]);

    const b = await observe('shell', 0);
    b.rec.output!(Buffer.from('x'), 'stdout');
    b.rec.output!(Buffer.from('y'), 'stdout');
    await b.rec.finish();
    expect(b.events().events).toEqual([
      [0, 'o', 'x'],
      [0, 'o', 'y'],
    ]);
  });

  it('exec: records \\n as \\r\\n across chunks and streams, with the masked command in the header', async () => {
    const { rec, events } = await observe('exec');
    rec.output!(Buffer.from('a\r'), 'stdout');
    rec.output!(Buffer.from('\nb\n'), 'stdout');
    rec.output!(Buffer.from('\nerr\n'), 'stderr');
    // A character cut between two chunks stays whole.
    const euro = Buffer.from('€');
    rec.output!(euro.subarray(0, 1), 'stdout');
    rec.output!(euro.subarray(1), 'stdout');
    await rec.finish();
    const { header, events: ev } = events();
    expect(header).toMatchObject({ version: 2, command: 'make', title: 'box — alice' });
    expect(ev.map((e) => e[2]).join('')).toBe('a\r\nb\r\n\r\nerr\r\n€');
  });

  it('says it is congested while more than RECORDING_BACKLOG_MAX is not yet on disk', async () => {
    const { rec, writer } = await observe('shell', 0);
    expect(rec.congested!()).toBe(false);
    const chunk = Buffer.alloc(COALESCE_BYTES, 'z');
    // Synchronously, without giving the I/O worker's answers a chance: all of it is in flight.
    for (let n = 0; n <= RECORDING_BACKLOG_MAX; n += chunk.length) rec.output!(chunk, 'stdout');
    expect(writer.backlog).toBeGreaterThan(RECORDING_BACKLOG_MAX);
    expect(rec.congested!()).toBe(true);
    await expect.poll(() => rec.congested!(), { timeout: 10_000 }).toBe(false);
    await rec.finish();
  });

  it('records input masked, and the recording hashes to what close() returned', async () => {
    const { rec, writer, events, closed } = await observe('shell');
    for (const ch of 'echo 4111 1111 1111 1111\r') rec.input!(Buffer.from(ch));
    await rec.finish();
    const file = readFileSync(writer.path);
    expect(closed()).toEqual({ sha256: sha256(file), bytes: file.length });
    const input = events()
      .events.filter((e) => e[1] === 'i')
      .map((e) => e[2])
      .join('');
    expect(input).toBe('echo •••• •••• •••• 1111\r');
    expect(readFileSync(writer.path, 'utf8')).not.toContain('4111 1111');
  });
});
