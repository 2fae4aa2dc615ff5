/**
 * The seams of a terminal session, where the later stages of issue 4 plug in:
 *
 *   client ──input──▶ InputFilter[] (guardrails) ──▶ observers.input ──▶ target
 *   client ◀─output── observers.output ◀── OutputFilter[] (masking) ◀── target
 *
 * - **Guardrails** are an `InputFilter`: `command()` decides an exec command
 *   before it runs, `input()` sees every keystroke chunk of a shell (and can
 *   hold it — e.g. until the submitted line is parsed — or block it with a
 *   notice). Decisions may be async (review waits for an approver); the
 *   session applies them strictly in order and stops reading the client while
 *   too many are pending.
 * - **Masking** is an `OutputFilter`: synchronous, streaming. It may hold back
 *   the tail of a chunk (a token cut in two) and release it on the next chunk
 *   or at `flush()`.
 * - **Recording** is a `SessionObserver`: it sees input after the guardrails
 *   and output after masking, so a recording never holds what the user did
 *   not see, and resizes for the asciicast header/events.
 *
 * The identity implementations below are what runs until those stages land.
 */
import type { TerminalMode } from '@sallyport/protocol';

export type OutputStream = 'stdout' | 'stderr';

export interface SessionInfo {
  sessionId: string;
  targetId: string;
  grantId: string;
  username: string;
  mode: TerminalMode;
  command?: string;
  cols: number;
  rows: number;
}

export type InputDecision =
  | { action: 'allow'; data: Buffer }
  | { action: 'block'; code: string; message: string };

export type CommandDecision = { action: 'allow' } | { action: 'block'; code: string; message: string };

export interface InputFilter {
  readonly name: string;
  /** Exec mode: the command, before the channel is opened. */
  command?(command: string): CommandDecision | Promise<CommandDecision>;
  /** A chunk the client typed or piped. `allow` may carry less (held back) or other bytes. */
  input(data: Buffer): InputDecision | Promise<InputDecision>;
}

export interface OutputFilter {
  readonly name: string;
  /** Returns the bytes to send now (possibly fewer: the rest is held back until the next call or flush). */
  output(data: Buffer, stream: OutputStream): Buffer;
  /** End of the session: whatever was held back. */
  flush?(stream: OutputStream): Buffer;
}

export interface SessionSummary {
  reason: 'exit' | 'revoked' | 'expired' | 'client_closed' | 'error';
  exitCode: number | null;
  exitSignal?: string;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
}

/** Sees the session as the user does (after filters). Recording implements this. */
export interface SessionObserver {
  readonly name: string;
  started?(info: SessionInfo): void | Promise<void>;
  input?(data: Buffer): void;
  /** `data` is not modified after the call: an observer may keep it (the recording coalesces chunks). */
  output?(data: Buffer, stream: OutputStream): void;
  resize?(cols: number, rows: number): void;
  /**
   * True while the observer holds more than it should (a recording disk slower than the
   * session): the session stops reading the target until it is false again.
   */
  congested?(): boolean;
  /** Resolves once the observer has persisted what it holds (the recording is closed and hashed). */
  ended?(summary: SessionSummary): void | Promise<void>;
}

export interface SessionFilters {
  input: InputFilter[];
  output: OutputFilter[];
  observers: SessionObserver[];
}

/** What a filter may do to the session besides transforming bytes. */
export interface FilterContext {
  info: SessionInfo;
  /** A gateway notice to the client (e.g. "waiting for approval"), shown distinctly from terminal output. */
  notice(level: 'info' | 'warn' | 'error', code: string, message: string): void;
}

/** Builds the filters of one session. The route passes one; the default is identity. */
export type FilterFactory = (ctx: FilterContext) => SessionFilters | Promise<SessionFilters>;

export const identityInputFilter: InputFilter = {
  name: 'identity',
  command: () => ({ action: 'allow' }),
  input: (data) => ({ action: 'allow', data }),
};

export const identityOutputFilter: OutputFilter = {
  name: 'identity',
  output: (data) => data,
};

export const identityFilters: FilterFactory = () => ({
  input: [identityInputFilter],
  output: [identityOutputFilter],
  observers: [],
});
