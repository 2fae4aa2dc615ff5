/**
 * Masking of terminal output (DESIGN.md "Masking"): an `OutputFilter` that
 * runs every byte the target sends through the masker's stream, one stream per
 * output stream (stdout, stderr), so a secret cut in two by chunking is still
 * caught. The masked text is the only thing that leaves: the session sends it to
 * the client and hands it to its observers (recording); the raw bytes stay here.
 *
 * - Shell sessions use `interactive: true` (small pushes are keyboard echo: only
 *   strong candidates are held, so typing is not delayed); exec sessions use
 *   `interactive: false` (exact: the same result as masking the whole output).
 * - A stream may hold back a trailing word or a prefix until it knows more.
 *   After `drainMs` without output the filter calls `drain()` on every stream and
 *   passes what it releases to `emit` (the session's output path after the
 *   filters), so a prompt or a progress line is not stuck behind the masker.
 *   Strong candidates (digits, `@…`, an open key block) stay held until more
 *   output decides them or the session ends.
 * - Bytes are decoded as UTF-8 per stream (a character split across chunks is
 *   kept for the next one); output that is not UTF-8 is passed on as U+FFFD.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Masker, TextStreamMasker } from '../../masking';
import type { OutputFilter, OutputStream } from './filters';
import { encodeOutput } from './output-buffers';

export const DRAIN_MS = 50;

export interface MaskingFilterOptions {
  masker: Masker;
  /** True for a shell (PTY), false for exec. */
  interactive: boolean;
  /** Where text released by the idle drain or by `close()` goes: to the client and the observers. */
  emit: (data: Buffer, stream: OutputStream) => void;
  drainMs?: number;
}

export interface MaskingFilter extends OutputFilter {
  /**
   * The session is over: stops the drain timer and emits whatever is still held
   * (masked) through `emit`. Idempotent; a no-op after the session's own flush.
   */
  close(): void;
}

interface StreamState {
  decoder: StringDecoder;
  masker: TextStreamMasker;
  /** Text pushed since the last flush (only then can anything be held). */
  dirty: boolean;
}

const EMPTY = Buffer.alloc(0);

export function createMaskingFilter(opts: MaskingFilterOptions): MaskingFilter {
  const drainMs = opts.drainMs ?? DRAIN_MS;
  const streams = new Map<OutputStream, StreamState>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const state = (stream: OutputStream): StreamState => {
    let s = streams.get(stream);
    if (!s) {
      s = {
        decoder: new StringDecoder('utf8'),
        masker: opts.masker.createStream({ interactive: opts.interactive }),
        dirty: false,
      };
      streams.set(stream, s);
    }
    return s;
  };

  const drainAll = () => {
    timer = undefined;
    if (closed) return;
    for (const [stream, s] of streams) {
      if (!s.dirty) continue;
      const text = s.masker.drain();
      if (text.length > 0) opts.emit(encodeOutput(text), stream);
    }
  };

  const armDrain = () => {
    if (closed) return;
    // Restarted on every chunk: refresh() re-arms the same timer instead of a new one per chunk.
    if (timer) timer.refresh();
    else {
      timer = setTimeout(drainAll, drainMs);
      timer.unref();
    }
  };

  const flushStream = (stream: OutputStream): Buffer => {
    const s = streams.get(stream);
    if (!s) return EMPTY;
    const text = s.masker.push(s.decoder.end()) + s.masker.flush();
    s.decoder = new StringDecoder('utf8');
    s.dirty = false;
    return text.length > 0 ? encodeOutput(text) : EMPTY;
  };

  const stopTimerIfClean = () => {
    for (const s of streams.values()) if (s.dirty) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
  };

  return {
    name: 'masking',
    output(data, stream) {
      const s = state(stream);
      const text = s.decoder.write(data);
      if (text.length === 0) return EMPTY;
      s.dirty = true;
      const out = s.masker.push(text);
      armDrain();
      return out.length > 0 ? encodeOutput(out) : EMPTY;
    },
    flush(stream) {
      const out = flushStream(stream);
      stopTimerIfClean();
      return out;
    },
    close() {
      if (closed) return;
      for (const stream of streams.keys()) {
        const out = flushStream(stream);
        if (out.length > 0) opts.emit(out, stream);
      }
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
