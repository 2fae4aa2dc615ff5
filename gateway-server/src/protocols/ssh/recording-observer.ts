/**
 * Recording of a terminal session as asciicast v2 (DESIGN.md "Recording"), a
 * `SessionObserver`: it sees output after masking and input after the
 * guardrails, so a recording never holds what the user was not shown.
 *
 *   {"version":2,"width":80,"height":24,"timestamp":…,"env":{"TERM":"xterm-256color"},"title":"box — alice"}
 *   [0.412345, "o", "…"]      output (stdout and stderr; masked)
 *   [1.002000, "i", "ls\r"]   input as sent to the target, masked too (users paste secrets)
 *   [3.500000, "r", "100x30"] resize
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
import type { OutputStream, SessionInfo, SessionObserver, SessionSummary } from './filters';

export interface AsciicastHeader {
  version: 2;
  width: number;
  height: number;
  timestamp: number;
  env: { TERM: string };
  title: string;
  command?: string;
}

export type AsciicastEvent = [number, 'o' | 'i' | 'r' | 'm', string];

export interface RecordingObserverOptions {
  recording: Pick<ActiveRecording, 'writeLine' | 'onError' | 'finish'>;
  info: SessionInfo;
  masker: Masker;
  /** A write failed: the session must end (it may not continue unrecorded). Called at most once. */
  onFailure: (err: Error) => void;
  now?: () => number;
}

export interface RecordingObserver extends SessionObserver {
  /** Closes, hashes and registers the recording; idempotent (also for sessions that never started). */
  finish(): Promise<void>;
}

export function createRecordingObserver(opts: RecordingObserverOptions): RecordingObserver {
  const { recording, info, masker } = opts;
  const now = opts.now ?? Date.now;
  const t0 = now();
  const exec = info.mode === 'exec';
  const outDecoders = new Map<OutputStream, StringDecoder>();
  /** Last output character per stream (exec newline translation across chunks). */
  const lastChar = new Map<OutputStream, string>();
  const inDecoder = new StringDecoder('utf8');
  // Exact (non-interactive) masking of input: a secret typed key by key is caught too;
  // an input event may be recorded a little later than it was sent.
  const inMasker: TextStreamMasker = masker.createStream({ interactive: false });
  let finished: Promise<void> | undefined;
  let failed = false;

  const event = (code: AsciicastEvent[1], data: string) => {
    if (finished || data.length === 0) return;
    const seconds = Math.max(0, Math.round(now() - t0) / 1000);
    recording.writeLine(JSON.stringify([seconds, code, data]));
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

  const outputText = (data: Buffer, stream: OutputStream): string => {
    let d = outDecoders.get(stream);
    if (!d) {
      d = new StringDecoder('utf8');
      outDecoders.set(stream, d);
    }
    const text = d.write(data);
    if (!exec || text.length === 0) return text;
    const prev = lastChar.get(stream) ?? '';
    lastChar.set(stream, text[text.length - 1]!);
    return (prev + text).replace(/(?<!\r)\n/g, '\r\n').slice(prev.length);
  };

  const finish = (): Promise<void> => {
    if (finished) return finished;
    event('i', inMasker.push(inDecoder.end()) + inMasker.flush());
    for (const d of outDecoders.values()) event('o', d.end());
    finished = recording.finish().then(() => undefined);
    return finished;
  };

  return {
    name: 'recording',
    input(data) {
      event('i', inMasker.push(inDecoder.write(data)));
    },
    output(data, stream) {
      event('o', outputText(data, stream));
    },
    resize(cols, rows) {
      event('r', `${cols}x${rows}`);
    },
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
