// SQL session recording (issue 5): JSON lines of statements and masked results, written as the
// session runs, hashed at close, hash in the ledger. The line format is `SqlRecordingLine` in
// protocol/src/sql.ts (the replay CLI and the UI parse it with the same schema).
//
// The session calls the recorder with what it already sends, so a recorder never sees a value the
// client did not see: every frame handed to `frame()` has been masked. The SQL text (typed by the
// user, possibly with literals such as an e-mail address) goes through `maskText`, as it does for
// the ledger.
//
// Fail closed:
//   - `start()` rejects with SqlRecordingUnavailableError when the recording cannot be opened; the
//     session then does not start (the channel answers `recording_unavailable`).
//   - a write error later (disk full, I/O error) calls `onFailure(reason)` once; the owner of the
//     session closes it with that reason. Nothing more is written after a failure.

import path from 'node:path';
import type {
  SqlColumn,
  SqlRecordingError,
  SqlRecordingLine,
  SqlRecordingLineOf,
  SqlServerMessage,
} from '@sallyport/protocol';
import type { ActiveRecording, RecordingMeta } from '../../recording';

export interface SqlRecordingMeta {
  sessionId: string;
  grantId: string;
  targetId: string;
  username: string;
  level: string;
  readOnly: boolean;
  startedAt: Date;
}

export interface SqlRecorder {
  /** Called once before the first statement. Rejects if the session must not start unrecorded. */
  start(meta: SqlRecordingMeta): Promise<void> | void;
  /**
   * A batch the user submitted (the verdict follows as frames). `texts`: its statements as the
   * guard cut them out (null: it does not parse).
   */
  batch(runId: string, sql: string, at: Date, texts: string[] | null): void;
  /** Every frame sent to the client, already masked, in order. */
  frame(frame: SqlServerMessage, at: Date): void;
  /** Session end. Resolves with what the ledger should reference (the recording's hash), if any. */
  finish(reason: string): Promise<{ hash?: string; location?: string } | undefined>;
}

/** Records nothing. The default when the gateway has no recording catalogue. */
export const noopSqlRecorder: SqlRecorder = {
  start() {},
  batch() {},
  frame() {},
  async finish() {
    return undefined;
  },
};

export interface SqlRecorderHooks {
  /** The recording failed mid-session: the session must be closed with `reason`. Called at most once. */
  onFailure?(reason: string): void;
}

/** One recorder per session. */
export type SqlRecorderFactory = (meta: SqlRecordingMeta, hooks?: SqlRecorderHooks) => SqlRecorder;

export const noopSqlRecorderFactory: SqlRecorderFactory = () => noopSqlRecorder;

/** Thrown by `start()` when the recording cannot be opened: the session must not start. */
export class SqlRecordingUnavailableError extends Error {
  readonly code = 'recording_unavailable';
  constructor(message: string) {
    super(message);
    this.name = 'SqlRecordingUnavailableError';
  }
}

/** Where the lines go: an open recording (RecordingCatalog.start's ActiveRecording fits). */
export interface SqlRecordingSink {
  readonly path?: string;
  /** Appends one line; never throws (errors surface through onError / finish). */
  writeLine(line: string): void;
  onError(fn: (err: Error) => void): void;
  /** Flushes, closes, hashes (and, for the catalogue, writes `recording.closed`). */
  finish(): Promise<{ sha256: string; bytes: number }>;
}

export interface JsonlSqlRecorderOptions {
  /** Opens the recording; a rejection means the session must not start. */
  open(meta: SqlRecordingMeta): Promise<SqlRecordingSink>;
  /** How many (masked) result rows of each statement are kept (config `recording.sqlResultRows`). */
  resultRows: number;
  /** Masks SQL text and reasons (the masker's maskText); identity when absent. */
  maskText?: (text: string) => string;
  onFailure?: (reason: string) => void;
}

/** Error frames that refuse a new run rather than end the one being recorded. */
const NOT_OF_THE_RUN = new Set(['busy', 'session_closed']);
/** What the guard answers for SQL its grammar rejects (see session.ts). */
const SYNTAX_ERROR_SQLSTATE = '42601';

interface StatementState {
  index: number;
  at: Date;
  columns: SqlColumn[];
  rows: (string | null)[][];
  masked: [number, number][];
  /** Rows the client received so far (kept or not). */
  seen: number;
  notices: NonNullable<SqlRecordingLineOf<'statement'>['notices']>;
}

interface RunState {
  id: string;
  sql: string;
  /** Statement texts as the guard cut them out; null when the batch does not parse. */
  texts: string[] | null;
  /** Index of the next statement to run (the one after the last `done`). */
  next: number;
  /** When the next statement started (the run's start, then each `done`). */
  nextAt: Date;
  current: StatementState | undefined;
  /** Held for an approver (a pending `review`): nothing of the batch runs until approved. */
  held?: boolean;
}

/** A SqlRecorder writing `SqlRecordingLine`s, one JSON object per line. */
export function createJsonlSqlRecorder(opts: JsonlSqlRecorderOptions): SqlRecorder {
  const keep = Math.max(0, Math.floor(opts.resultRows));
  const mask = opts.maskText ?? ((t: string) => t);
  let sink: SqlRecordingSink | undefined;
  let failed: string | undefined;
  let finishing: Promise<{ hash?: string; location?: string } | undefined> | undefined;
  let run: RunState | undefined;
  let closedCode: string | undefined;
  let completed = 0;

  const write = (line: SqlRecordingLine) => {
    if (!sink || failed || finishing) return;
    sink.writeLine(JSON.stringify(line));
  };

  const textOf = (r: RunState, index: number): string => mask(r.texts?.[index] ?? r.sql);

  const statementOf = (r: RunState, index: number): StatementState => {
    if (r.current?.index === index) return r.current;
    r.current = { index, at: r.nextAt, columns: [], rows: [], masked: [], seen: 0, notices: [] };
    return r.current;
  };

  const statementLine = (
    r: RunState,
    s: StatementState,
    at: Date,
    fields: Partial<SqlRecordingLineOf<'statement'>> = {},
  ): SqlRecordingLineOf<'statement'> => ({
    type: 'statement',
    at: s.at.toISOString(),
    runId: r.id,
    index: s.index,
    sql: textOf(r, s.index),
    verdict: 'allow',
    durationMs: Math.max(0, at.getTime() - s.at.getTime()),
    rowCount: null,
    truncated: false,
    command: null,
    columns: s.columns,
    rows: s.rows,
    masked: s.masked,
    ...(s.notices.length > 0 ? { notices: s.notices } : {}),
    ...fields,
  });

  const refused = (
    r: RunState,
    f: SqlServerMessage & { type: 'blocked' | 'review' },
    at: Date,
  ): SqlRecordingLineOf<'statement'> => ({
    type: 'statement',
    at: at.toISOString(),
    runId: r.id,
    index: f.statementIndex,
    sql: mask(f.statement),
    verdict: f.type === 'blocked' ? 'block' : 'review',
    rule: f.rule,
    message: mask(f.message),
    ...(f.type === 'review' && f.reviewId ? { reviewId: f.reviewId } : {}),
    durationMs: 0,
    rowCount: null,
    truncated: false,
    command: null,
    columns: [],
    rows: [],
    masked: [],
  });

  const errorOf = (f: SqlServerMessage & { type: 'error' }): SqlRecordingError => ({
    message: f.message,
    ...(f.code !== undefined ? { code: f.code } : {}),
    ...(f.position !== undefined ? { position: f.position } : {}),
    ...(f.detail !== undefined ? { detail: f.detail } : {}),
    ...(f.hint !== undefined ? { hint: f.hint } : {}),
  });

  const onFrame = (f: SqlServerMessage, at: Date) => {
    if (f.type === 'closed') {
      closedCode = f.code;
      return;
    }
    if (f.type === 'ready') return;
    const r = run;
    if (!r || !('id' in f) || f.id !== r.id) return;
    switch (f.type) {
      case 'columns':
        statementOf(r, f.statementIndex).columns = f.columns;
        return;
      case 'rows': {
        const s = statementOf(r, f.statementIndex);
        const room = keep - s.seen;
        if (room > 0) {
          for (const row of f.rows.slice(0, room)) s.rows.push(row);
          for (const [row, col] of f.masked) if (row < room) s.masked.push([s.seen + row, col]);
        }
        s.seen += f.rows.length;
        return;
      }
      case 'notice': {
        const { type: _t, id: _id, statementIndex, ...notice } = f;
        statementOf(r, statementIndex).notices.push(notice);
        return;
      }
      case 'done': {
        const s = statementOf(r, f.statementIndex);
        write(
          statementLine(r, s, at, {
            ...(f.durationMs !== undefined ? { durationMs: f.durationMs } : {}),
            rowCount: f.rowCount,
            truncated: f.truncated,
            command: f.command,
          }),
        );
        completed++;
        r.current = undefined;
        r.next = f.statementIndex + 1;
        r.nextAt = at;
        return;
      }
      case 'error': {
        if (f.code !== undefined && NOT_OF_THE_RUN.has(f.code)) return;
        if (f.statementIndex === undefined && !r.current && f.code === SYNTAX_ERROR_SQLSTATE) {
          // Refused by the guard before anything ran: the batch does not parse.
          write({
            ...statementLine(r, statementOf(r, 0), at, { verdict: 'block', rule: 'syntax-error' }),
            sql: mask(r.sql),
            durationMs: 0,
            error: errorOf(f),
          });
        } else {
          const s = statementOf(r, f.statementIndex ?? r.current?.index ?? r.next);
          write(statementLine(r, s, at, { error: errorOf(f) }));
        }
        run = undefined;
        return;
      }
      case 'blocked':
      case 'review':
        write(refused(r, f, at));
        // A held statement may still run once approved (more frames for this run): keep the run.
        if (f.type === 'blocked') run = undefined;
        else r.held = f.status !== 'approved';
        return;
      case 'cancelled': {
        const index = r.current?.index ?? r.next;
        // A cancelled hold ran nothing: only the `cancel` line.
        const running = !r.held && (r.current !== undefined || index < (r.texts?.length ?? 0));
        if (running) write(statementLine(r, statementOf(r, index), at, { cancelled: true }));
        write({
          type: 'cancel',
          at: at.toISOString(),
          runId: r.id,
          ...(running ? { index } : {}),
        });
        run = undefined;
        return;
      }
      case 'complete':
        run = undefined;
        return;
    }
  };

  return {
    async start(meta) {
      try {
        sink = await opts.open(meta);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        throw new SqlRecordingUnavailableError(
          `the session cannot be recorded${typeof code === 'string' ? ` (${code})` : ''}, so it is not started`,
        );
      }
      sink.onError((err) => {
        if (failed) return;
        const code = (err as { code?: unknown }).code;
        failed = `the session recording could not be written${typeof code === 'string' ? ` (${code})` : ''}; the session is closed`;
        opts.onFailure?.(failed);
      });
      write({
        type: 'header',
        version: 1,
        sessionId: meta.sessionId,
        targetId: meta.targetId,
        grantId: meta.grantId,
        username: meta.username,
        level: meta.level,
        readOnly: meta.readOnly,
        resultRows: keep,
        startedAt: meta.startedAt.toISOString(),
      });
    },

    batch(runId, sql, at, texts) {
      run = { id: runId, sql, texts, next: 0, nextAt: at, current: undefined };
      write({ type: 'batch', at: at.toISOString(), runId, sql: mask(sql) });
    },

    frame(f, at) {
      if (!sink || failed || finishing) return;
      onFrame(f, at);
    },

    finish(reason) {
      finishing ??= (async () => {
        const s = sink;
        if (!s) return undefined;
        if (!failed) {
          s.writeLine(
            JSON.stringify({
              type: 'end',
              at: new Date().toISOString(),
              reason: mask(reason),
              ...(closedCode ? { code: closedCode } : {}),
              statements: completed,
            } satisfies SqlRecordingLine),
          );
        }
        const out = await s.finish();
        return { hash: out.sha256, ...(s.path ? { location: path.basename(s.path) } : {}) };
      })();
      return finishing;
    },
  };
}

/**
 * The gateway's recorder factory: every SQL session is recorded in the recording catalogue
 * (`<dir>/<sessionId>.jsonl`, row in `recordings`, `recording.closed` with its SHA-256 at the end).
 */
export function catalogSqlRecorderFactory(
  catalog: { start(meta: RecordingMeta): Promise<ActiveRecording> },
  opts: { resultRows: number; maskText?: (text: string) => string },
): SqlRecorderFactory {
  return (_meta, hooks) =>
    createJsonlSqlRecorder({
      resultRows: opts.resultRows,
      ...(opts.maskText ? { maskText: opts.maskText } : {}),
      ...(hooks?.onFailure ? { onFailure: hooks.onFailure } : {}),
      open: (meta) =>
        catalog.start({
          sessionId: meta.sessionId,
          kind: 'sql',
          targetId: meta.targetId,
          grantId: meta.grantId,
          username: meta.username,
        }),
    });
}
