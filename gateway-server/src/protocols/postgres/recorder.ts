import type { SqlServerMessage } from '@sallyport/protocol';

/**
 * Seam for SQL session recording (issue 5, later part): JSON lines of statements and masked
 * results, written as the session runs, hashed at close, hash in the ledger.
 *
 * The session calls the recorder with what it already sends, so a recorder never sees a value
 * the client did not see: every frame handed to `frame()` has been masked.
 */
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
  /** Called once before the first statement. */
  start(meta: SqlRecordingMeta): Promise<void> | void;
  /** A batch the user submitted (before the guard decided; the verdict follows as frames). */
  batch(runId: string, sql: string, at: Date): void;
  /** Every frame sent to the client, already masked, in order. */
  frame(frame: SqlServerMessage, at: Date): void;
  /** Session end. Resolves with what the ledger should reference (the recording's hash), if any. */
  finish(reason: string): Promise<{ hash?: string; location?: string } | undefined>;
}

/** Records nothing. The default until recording lands. */
export const noopSqlRecorder: SqlRecorder = {
  start() {},
  batch() {},
  frame() {},
  async finish() {
    return undefined;
  },
};

/** One recorder per session. */
export type SqlRecorderFactory = (meta: SqlRecordingMeta) => SqlRecorder;

export const noopSqlRecorderFactory: SqlRecorderFactory = () => noopSqlRecorder;
