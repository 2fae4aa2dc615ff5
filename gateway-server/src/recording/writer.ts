import { createHash, type Hash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';

/**
 * One session's recording file, written as the session runs. Lines are
 * buffered and flushed (write + fdatasync) at least every `flushMs`, so a crash
 * loses at most that much. The SHA-256 of every byte written is computed as it
 * goes and returned at close, for the ledger.
 *
 * Fail closed: the first write error is kept and reported through `onError`;
 * the session that owns the recording must then end (an unrecorded session is
 * not allowed to continue).
 */
export interface RecordingWriter {
  readonly path: string;
  /** Appends one line (a newline is added). Never throws; errors surface through onError/close. */
  writeLine(line: string): void;
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

export async function openRecording(opts: OpenRecordingOptions): Promise<RecordingWriter> {
  if (!/^[A-Za-z0-9._-]+$/.test(opts.name)) throw new Error(`bad recording name ${opts.name}`);
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const file = path.join(opts.dir, opts.name);
  // 'wx': never overwrite an existing recording.
  const fh: FileHandle = await open(file, 'wx', 0o600);
  const hash: Hash = createHash('sha256');
  let pending: string[] = [];
  let bytes = 0;
  let error: Error | undefined;
  const errorHandlers: Array<(err: Error) => void> = [];
  let chain: Promise<void> = Promise.resolve();
  let closed = false;

  const fail = (err: Error) => {
    if (error) return;
    error = err;
    for (const fn of errorHandlers) fn(err);
  };

  const flush = () => {
    if (pending.length === 0 || error) return chain;
    const chunk = Buffer.from(pending.join(''), 'utf8');
    pending = [];
    hash.update(chunk);
    bytes += chunk.length;
    chain = chain.then(async () => {
      if (error) return;
      try {
        await fh.write(chunk);
        await fh.datasync();
      } catch (err) {
        fail(err as Error);
      }
    });
    return chain;
  };
  const timer = setInterval(() => void flush(), opts.flushMs ?? 1000);
  timer.unref();

  return {
    path: file,
    writeLine(line) {
      if (closed) return;
      pending.push(`${line}\n`);
    },
    onError(fn) {
      errorHandlers.push(fn);
      if (error) fn(error);
    },
    async close() {
      if (closed) throw new Error('recording already closed');
      closed = true;
      clearInterval(timer);
      await flush();
      await fh.close().catch((err: Error) => fail(err));
      if (error) throw new Error(`recording ${opts.name} could not be written: ${error.message}`);
      return { sha256: hash.digest('hex'), bytes };
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
