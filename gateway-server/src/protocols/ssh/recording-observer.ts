/**
 * Recording of a terminal session as asciicast v2 (DESIGN.md "Recording"), a
 * `SessionObserver`: it sees output after masking and input after the
 * guardrails, so a recording never holds what the user was not shown.
 *
 *   {"version":2,"width":80,"height":24,"timestamp":…,"env":{"TERM":"xterm-256color"},"title":"box — alice"}
 *   [0.412,"o","…"]      output (stdout and stderr; masked)
 *   [1.002,"i","ls\r"]   input as sent to the target, masked too (users paste secrets)
 *   [3.5,"r","100x30"]   resize
 *
 * Output that arrives in a burst is written as one event: chunks within
 * `COALESCE_MS` of the event's first chunk (and up to `COALESCE_BYTES`) join it,
 * and the event carries the first chunk's time, so a replay shows any byte at
 * most `COALESCE_MS` early. Input and resizes close the open output event
 * first, so events stay in time order. Only the recording is coalesced: what
 * the user sees is never held for it.
 *
 * Output lines are built from the masked bytes as they are (recording/asciicast.ts):
 * no decode, no JSON.stringify; the bytes are copied once into the writer's block.
 *
 * Exec sessions carry the command (masked) as the header field `command`. An
 * exec has no PTY: its output is recorded with the `\n` → `\r\n` translation
 * the user's own terminal applied, so it replays as it looked.
 *
 * Fail closed: the recording is opened before the session starts (`openSshRecording`
 * throws when it cannot be), and a write error during the session calls
 * `onFailure`, whose job is to close the session. At the end `finish()` closes
 * the file, hashes it and writes `recording.closed` to the ledger.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Masker, TextStreamMasker } from '../../masking';
import type { ActiveRecording, RecordingCatalog } from '../../recording';
import { type CastCode, encodeEvent, encodeTextEvent, Utf8Chunker } from '../../recording/asciicast';
import type { OutputStream, SessionInfo, SessionObserver, SessionSummary } from './filters';

/** Output chunks this close to the first one of an event join it (the replay timing error bound). */
export const COALESCE_MS = 8;
/** …up to this many bytes per event. */
export const COALESCE_BYTES = 64 * 1024;
/** Recording bytes not yet on disk beyond which the session stops reading the target. */
export const RECORDING_BACKLOG_MAX = 8 * 1024 * 1024;

export interface AsciicastHeader {
  version: 2;
  width: number;
  height: number;
  timestamp: number;
  env: { TERM: string };
  title: string;
  command?: string;
}

export type AsciicastEvent = [number, CastCode, string];

export interface RecordingObserverOptions {
  recording: Pick<ActiveRecording, 'writeLine' | 'writeBytes' | 'onError' | 'finish'> &
    Partial<Pick<ActiveRecording, 'backlog'>>;
  info: SessionInfo;
  masker: Masker;
  /** A write failed: the session must end (it may not continue unrecorded). Called at most once. */
  onFailure: (err: Error) => void;
  now?: () => number;
  /** Coalescing window for output events (default COALESCE_MS; 0: one event per chunk). */
  coalesceMs?: number;
}

export interface RecordingObserver extends SessionObserver {
  /** Closes, hashes and registers the recording; idempotent (also for sessions that never started). */
  finish(): Promise<void>;
}

interface StreamState {
  chunker: Utf8Chunker;
  /** The last byte recorded on this stream (exec `\n` translation across chunks); 0 before any. */
  last: number;
}

export function createRecordingObserver(opts: RecordingObserverOptions): RecordingObserver {
  const { recording, info, masker } = opts;
  const now = opts.now ?? Date.now;
  const windowMs = opts.coalesceMs ?? COALESCE_MS;
  const t0 = now();
  const exec = info.mode === 'exec';
  const streams = new Map<OutputStream, StreamState>();
  const inDecoder = new StringDecoder('utf8');
  // Exact (non-interactive) masking of input: a secret typed key by key is caught too;
  // an input event may be recorded a little later than it was sent.
  const inMasker: TextStreamMasker = masker.createStream({ interactive: false });
  let finished: Promise<void> | undefined;
  let failed = false;

  /** The open output event: its parts, their preceding bytes (exec), its time and size. */
  let parts: Buffer[] = [];
  let prevs: number[] = [];
  let pendingAt = 0;
  let pendingBytes = 0;
  let timer: NodeJS.Timeout | undefined;

  const seconds = (ms: number) => Math.max(0, Math.round(ms - t0) / 1000);

  const writeOutput = () => {
    if (parts.length === 0) return;
    const line = encodeEvent(seconds(pendingAt), 'o', parts, exec ? prevs : undefined);
    parts = [];
    prevs = [];
    pendingBytes = 0;
    recording.writeBytes(line);
  };

  const onTimer = () => {
    timer = undefined;
    if (!finished) writeOutput();
  };

  const textEvent = (code: CastCode, text: string) => {
    if (finished || text.length === 0) return;
    writeOutput();
    recording.writeBytes(encodeTextEvent(seconds(now()), code, text));
  };

  const output = (data: Buffer, stream: OutputStream) => {
    if (finished) return;
    let s = streams.get(stream);
    if (!s) {
      s = { chunker: new Utf8Chunker(), last: 0 };
      streams.set(stream, s);
    }
    const bytes = s.chunker.push(data);
    if (bytes.length === 0) return;
    const at = now();
    if (parts.length > 0 && (at - pendingAt >= windowMs || pendingBytes + bytes.length > COALESCE_BYTES))
      writeOutput();
    if (parts.length === 0) pendingAt = at;
    parts.push(bytes);
    prevs.push(s.last);
    pendingBytes += bytes.length;
    s.last = bytes[bytes.length - 1]!;
    if (windowMs <= 0) writeOutput();
    else if (!timer) {
      timer = setTimeout(onTimer, windowMs);
      timer.unref();
    }
  };

  const header: AsciicastHeader = {
    version: 2,
    width: info.cols,
    height: info.rows,
    timestamp: Math.floor(t0 / 1000),
    env: { TERM: 'xterm-256color' },
    title: `${info.targetId} — ${info.username}`,
    ...(info.command !== undefined ? { command: masker.maskText(info.command).text } : {}),
  };
  recording.writeLine(JSON.stringify(header));
  recording.onError((err) => {
    if (failed) return;
    failed = true;
    opts.onFailure(err);
  });

  const finish = (): Promise<void> => {
    if (finished) return finished;
    textEvent('i', inMasker.push(inDecoder.end()) + inMasker.flush());
    for (const [stream, s] of streams) {
      const rest = s.chunker.end();
      if (rest.length > 0) output(rest, stream);
    }
    writeOutput();
    if (timer) clearTimeout(timer);
    timer = undefined;
    finished = recording.finish().then(() => undefined);
    return finished;
  };

  return {
    name: 'recording',
    input(data) {
      textEvent('i', inMasker.push(inDecoder.write(data)));
    },
    output,
    resize(cols, rows) {
      textEvent('r', `${cols}x${rows}`);
    },
    congested: () => (recording.backlog ?? 0) > RECORDING_BACKLOG_MAX,
    ended: (_summary: SessionSummary) => finish(),
    finish,
  };
}

/**
 * Opens the recording of an SSH session (before the session starts) and writes
 * its header. Throws when the recording cannot be opened: the caller must then
 * refuse the session.
 */
export async function openSshRecording(
  catalog: RecordingCatalog,
  info: SessionInfo,
  masker: Masker,
  onFailure: (err: Error) => void,
): Promise<RecordingObserver> {
  const recording = await catalog.start({
    sessionId: info.sessionId,
    kind: 'ssh',
    targetId: info.targetId,
    grantId: info.grantId,
    username: info.username,
  });
  return createRecordingObserver({ recording, info, masker, onFailure });
}
