import { createHash } from 'node:crypto';
import { mkdirSync, open as openFd } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * One session's recording file, written as the session runs. Lines are copied
 * into a block; a full block is handed to the file at once (without waiting for
 * the timer), and every `flushMs` whatever is buffered is written and synced
 * (fdatasync), so a crash loses at most that much. Blocks hold whole lines only,
 * so the file never ends in half a line. The SHA-256 of every byte written is
 * computed as the blocks are written and returned at close, for the ledger.
 *
 * The writing and the hashing run on a worker thread shared by all recordings
 * (io-worker.mjs): at bulk output rates they were a fifth of the gateway's main
 * thread. Blocks are transferred to it, not copied, and come back for reuse.
 *
 * Fail closed: the first write error is kept and reported through `onError`;
 * the session that owns the recording must then end (an unrecorded session is
 * not allowed to continue). If the worker itself dies, every open recording fails.
 */
export interface RecordingWriter {
  readonly path: string;
  /** Appends one line (a newline is added). Never throws; errors surface through onError/close. */
  writeLine(line: string): void;
  /** Appends bytes as they are: whole lines, each ending in `\n`. Copied before it returns. */
  writeBytes(bytes: Uint8Array): void;
  /** Bytes accepted but not yet written to the file: grows when the disk is slower than the session. */
  readonly backlog: number;
  onError(fn: (err: Error) => void): void;
  /** Flushes, syncs and closes. Rejects if anything could not be written. */
  close(): Promise<{ sha256: string; bytes: number }>;
}

export interface OpenRecordingOptions {
  dir: string;
  /** File name without directory; must be unique (session id + extension). */
  name: string;
  flushMs?: number;
}

/**
 * Blocks come from pools shared by all recordings. An idle session holds none (its block goes
 * to the worker at the next flush and comes back to a pool); a session starts with small
 * blocks and, once it fills one between two flushes, takes big ones: fewer hand-overs at bulk
 * rates, little memory per interactive session.
 */
const SMALL = 64 * 1024;
const BIG = 1024 * 1024;
const pools = new Map<number, { max: number; free: Buffer[] }>([
  [SMALL, { max: 16, free: [] }],
  [BIG, { max: 2, free: [] }],
]);
const takeBlock = (size: number): Buffer => pools.get(size)?.free.pop() ?? Buffer.allocUnsafeSlow(size);
const giveBlock = (b: Buffer) => {
  const p = pools.get(b.length);
  if (p && p.free.length < p.max) p.free.push(b);
};

type Reply =
  | { op: 'written'; id: number; buffer: ArrayBuffer; length: number }
  | { op: 'error'; id: number; message: string }
  | { op: 'closed'; id: number; sha256?: string; bytes?: number; error?: string };

interface Open {
  written(length: number): void;
  failed(err: Error): void;
  closed(r: Extract<Reply, { op: 'closed' }>): void;
}

let worker: Worker | undefined;
let nextId = 1;
const open_ = new Map<number, Open>();

/**
 * The I/O worker, started with the first recording. It keeps the process alive only while a
 * recording is being closed (its hash is on the way); the sessions themselves keep it alive
 * while they write.
 */
function io(): Worker {
  if (worker) return worker;
  // No TypeScript loader needed (or wanted: it would slow the start): the worker is plain JS.
  const w = new Worker(new URL('./io-worker.mjs', import.meta.url), { execArgv: [] });
  w.on('message', (r: Reply) => {
    if (r.op === 'written') giveBlock(Buffer.from(r.buffer));
    const o = open_.get(r.id);
    if (!o) return;
    if (r.op === 'written') o.written(r.length);
    else if (r.op === 'error') o.failed(new Error(r.message));
    else o.closed(r);
  });
  const died = (err: Error) => {
    if (worker === w) worker = undefined;
    for (const o of open_.values()) {
      o.failed(err);
      o.closed({ op: 'closed', id: 0, error: err.message });
    }
    open_.clear();
  };
  w.on('error', (err) => died(err));
  w.on('exit', (code) => died(new Error(`the recording I/O worker stopped (exit code ${code})`)));
  w.unref();
  worker = w;
  return w;
}

let closing = 0;

function register(o: Open): { id: number; w: Worker } {
  const w = io();
  const id = nextId++;
  open_.set(id, o);
  return { id, w };
}

/** Waits for the worker's answer to `close`, keeping the process alive until it comes. */
async function closeIn(w: Worker, id: number, answered: Promise<Extract<Reply, { op: 'closed' }>>) {
  if (closing++ === 0) w.ref();
  try {
    w.postMessage({ op: 'close', id });
    return await answered;
  } finally {
    open_.delete(id);
    if (--closing === 0) w.unref();
  }
}

export async function openRecording(opts: OpenRecordingOptions): Promise<RecordingWriter> {
  if (!/^[A-Za-z0-9._-]+$/.test(opts.name)) throw new Error(`bad recording name ${opts.name}`);
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const file = path.join(opts.dir, opts.name);
  // 'wx': never overwrite an existing recording. A plain descriptor (not a FileHandle, which
  // closes itself when collected): the worker writes to it and closes it.
  const fd = await new Promise<number>((resolve, reject) =>
    openFd(file, 'wx', 0o600, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
  /** The block being filled (whole lines only), and how much of it is. */
  let block: Buffer | undefined;
  let fill = 0;
  let blockSize = SMALL;
  /** A block was handed off since the last flush because it was full. */
  let busySinceFlush = false;
  let bytes = 0;
  /** Handed to the worker, not yet written. */
  let inFlight = 0;
  let error: Error | undefined;
  const errorHandlers: Array<(err: Error) => void> = [];
  let closed = false;
  let onClosed: ((r: Extract<Reply, { op: 'closed' }>) => void) | undefined;
  let closeResult: Extract<Reply, { op: 'closed' }> | undefined;

  const fail = (err: Error) => {
    if (error) return;
    error = err;
    for (const fn of errorHandlers) fn(err);
  };

  const { id, w } = register({
    written: (n) => {
      inFlight -= n;
    },
    failed: fail,
    closed: (r) => {
      closeResult = r;
      onClosed?.(r);
    },
  });
  w.postMessage({ op: 'open', id, fd });

  /** Hands the filled part of the block to the worker (the block goes with it). */
  const handOff = () => {
    const b = block;
    const n = fill;
    block = undefined;
    fill = 0;
    if (!b || n === 0) {
      if (b) giveBlock(b);
      return;
    }
    bytes += n;
    if (error) return;
    inFlight += n;
    w.postMessage({ op: 'write', id, buffer: b.buffer, length: n }, [b.buffer as ArrayBuffer]);
  };

  /** Room for `n` more bytes at `fill` of the returned block. */
  const room = (n: number): Buffer => {
    if (block && fill + n > block.length) {
      // Filled before the timer: a busy session.
      blockSize = BIG;
      busySinceFlush = true;
      handOff();
    }
    if (!block) block = n > blockSize ? Buffer.allocUnsafeSlow(n) : takeBlock(blockSize);
    return block;
  };

  const flush = () => {
    // Quiet since the last flush (nothing handed off in between): back to small blocks.
    if (!busySinceFlush) blockSize = SMALL;
    busySinceFlush = false;
    handOff();
    if (!error) w.postMessage({ op: 'sync', id });
  };
  const timer = setInterval(flush, opts.flushMs ?? 1000);
  timer.unref();

  return {
    path: file,
    writeLine(line) {
      if (closed) return;
      const n = Buffer.byteLength(line, 'utf8');
      const b = room(n + 1);
      fill += b.write(line, fill, n, 'utf8');
      b[fill++] = 0x0a;
    },
    writeBytes(data) {
      if (closed || data.length === 0) return;
      room(data.length).set(data, fill);
      fill += data.length;
    },
    get backlog() {
      return inFlight + fill;
    },
    onError(fn) {
      errorHandlers.push(fn);
      if (error) fn(error);
    },
    async close() {
      if (closed) throw new Error('recording already closed');
      closed = true;
      clearInterval(timer);
      handOff();
      const r =
        closeResult ??
        (await closeIn(
          w,
          id,
          new Promise((resolve) => {
            onClosed = resolve;
          }),
        ));
      if (r.error) fail(new Error(r.error));
      if (error) throw new Error(`recording ${opts.name} could not be written: ${error.message}`);
      if (r.bytes !== bytes) throw new Error(`recording ${opts.name}: ${r.bytes} bytes written of ${bytes}`);
      return { sha256: r.sha256!, bytes };
    },
  };
}

/** Recomputes a recording's hash from disk, to compare with the ledger. */
export async function hashFile(file: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const h = createHash('sha256');
    for await (const chunk of fh.createReadStream()) h.update(chunk as Buffer);
    return h.digest('hex');
  } finally {
    await fh.close().catch(() => {});
  }
}
