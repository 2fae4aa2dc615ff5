import { z } from 'zod';
import { AccessLevel, TargetId } from './common';

/**
 * The SQL channel (`/api/sql`): one WebSocket = one SQL session on one target, under one grant.
 *
 * Client → server: authenticate (Authorization header, the console's cookie, or a first
 * `{type:'auth'}` frame), then `open`, then any number of `run` (one at a time) and `cancel`.
 *
 * Server → client, per run `id`: for every statement that returns rows, `columns` once, then
 * `rows` in batches, then `done`; for statements without rows just `done`. Every run ends with
 * exactly one terminal frame: `complete` (all statements ran), `error`, `blocked` or `cancelled`.
 * `closed` ends the session (grant revoked or expired, connection lost, …).
 *
 * Statement review, on every session: a batch whose verdict is `review` (a guardrail rule, see
 * docs/guardrails-sql.md) is held (nothing in it runs) and the run gets `review` (status
 * `pending`, with `reviewId`); the run stays open and other runs get `error busy`. Then either
 * `review` again with status `approved` (and `decidedBy`) followed by the batch's frames exactly as
 * for an allowed batch; or `blocked` with code `review_denied` / `review_expired` (the approver's
 * reason in `message`); or `cancelled` when the client sent `cancel` (the review is cancelled).
 * Every client must handle `review` frames. (Only a gateway without a review service answers such a
 * batch with `blocked`.)
 *
 * Every cell has passed the gateway's masking before it is sent: `rows.masked` lists the
 * coordinates `[rowIndex, columnIndex]` (within that frame) of the cells that were masked.
 */

/** Client-chosen run id, echoed on every frame of that run. */
export const SqlRunId = z.string().min(1).max(64);

/** Largest batch of SQL text accepted in one `run` frame (characters). */
export const SQL_MAX_TEXT = 512 * 1024;

export const SqlClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auth'), token: z.string().min(1).max(16_384) }).strict(),
  z
    .object({
      type: z.literal('open'),
      targetId: TargetId,
      grantId: z.string().min(1).max(64),
      /**
       * Accepted and ignored: every session now has statement review (it once opted a client in to
       * `review` frames; clients still send it).
       */
      reviews: z.boolean().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('run'),
      id: SqlRunId,
      sql: z.string().max(SQL_MAX_TEXT),
      /** Lower the session's row cap for this run (the gateway's cap still applies). */
      maxRows: z.number().int().min(1).max(10_000_000).optional(),
    })
    .strict(),
  z.object({ type: z.literal('cancel'), id: SqlRunId }).strict(),
]);
export type SqlClientMessage = z.infer<typeof SqlClientMessage>;

export const SqlColumn = z.object({
  name: z.string(),
  /** PostgreSQL type name (pg_type.typname: `int4`, `text`, `_text` for text[], …). */
  type: z.string(),
  /** Source table of a plain column reference, when PostgreSQL reports one. */
  table: z.string().optional(),
  schema: z.string().optional(),
});
export type SqlColumn = z.infer<typeof SqlColumn>;

const runFrame = { id: SqlRunId, statementIndex: z.number().int().min(0) };

export const SqlServerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ready'),
    sessionId: z.string(),
    targetId: z.string(),
    grantId: z.string(),
    level: AccessLevel,
    readOnly: z.boolean(),
    /** Most rows any one statement sends before `truncated`. */
    maxRows: z.number().int(),
  }),
  z.object({ type: z.literal('columns'), ...runFrame, columns: z.array(SqlColumn) }),
  z.object({
    type: z.literal('rows'),
    ...runFrame,
    rows: z.array(z.array(z.string().nullable())),
    /** `[rowIndex, columnIndex]` of every masked cell in this frame. */
    masked: z.array(z.tuple([z.number().int(), z.number().int()])),
  }),
  z.object({
    type: z.literal('done'),
    ...runFrame,
    /** The command tag's verb: SELECT, INSERT, UPDATE, CREATE, … */
    command: z.string(),
    /** Rows sent (row-returning statements) or affected (others); null when PostgreSQL reports none. */
    rowCount: z.number().int().nullable(),
    truncated: z.boolean(),
    durationMs: z.number().optional(),
  }),
  z.object({
    type: z.literal('complete'),
    id: SqlRunId,
    statements: z.number().int(),
    durationMs: z.number(),
  }),
  z.object({
    type: z.literal('error'),
    /** Absent for errors that belong to no run (malformed frame, open refused). */
    id: SqlRunId.optional(),
    message: z.string(),
    /** SQLSTATE for PostgreSQL's errors (`22012`), a gateway code otherwise (`syntax_error`, `busy`, …). */
    code: z.string().optional(),
    /** 1-based character position in the run's SQL text. */
    position: z.number().int().optional(),
    statementIndex: z.number().int().optional(),
    detail: z.string().optional(),
    hint: z.string().optional(),
  }),
  z.object({
    type: z.literal('blocked'),
    ...runFrame,
    rule: z.string(),
    message: z.string(),
    statement: z.string(),
    /** Why, when not the rule itself: `review_denied` (an approver refused), `review_expired`, `review_cancelled`. */
    code: z.string().optional(),
  }),
  /**
   * Statement review (every session): the batch is held for an approver
   * (`pending`), then, once approved, `approved` just before the batch runs. Not terminal.
   */
  z.object({
    type: z.literal('review'),
    ...runFrame,
    rule: z.string(),
    message: z.string(),
    /** The statement that needs review; the approval covers the whole batch, exactly as sent. */
    statement: z.string(),
    reviewId: z.string().optional(),
    status: z.enum(['pending', 'approved']).optional(),
    /** The approver (status `approved`). */
    decidedBy: z.string().optional(),
    /** When the review expires if nobody decides (status `pending`, ISO 8601). */
    expiresAt: z.string().optional(),
  }),
  /**
   * A message PostgreSQL sent while a statement ran (RAISE NOTICE, VACUUM VERBOSE, a dropped
   * object that did not exist …), masked like errors, texts clipped at 4 KiB. At most 100 per
   * statement and 500 per run; then one more says that the rest are not shown. Not terminal.
   */
  z.object({
    type: z.literal('notice'),
    ...runFrame,
    /** PostgreSQL's severity: NOTICE, WARNING, INFO, LOG, DEBUG. */
    severity: z.string(),
    message: z.string(),
    /** SQLSTATE (`00000` for RAISE NOTICE, `01000` for warnings, …). */
    code: z.string().optional(),
    detail: z.string().optional(),
    hint: z.string().optional(),
  }),
  z.object({ type: z.literal('cancelled'), id: SqlRunId }),
  z.object({
    type: z.literal('closed'),
    reason: z.string(),
    code: z.enum(['grant_ended', 'connection_lost', 'client_closed', 'shutdown', 'error']),
  }),
]);
export type SqlServerMessage = z.infer<typeof SqlServerMessage>;
export type SqlServerMessageOf<T extends SqlServerMessage['type']> = Extract<SqlServerMessage, { type: T }>;

/** WebSocket close codes of the SQL channel (besides WsClose's). */
export const SqlWsClose = {
  normal: 1000,
  refused: 4403,
  grantEnded: 4410,
  connectionLost: 4502,
} as const;

// ------------------------------------------------------------------------------- recordings

/**
 * SQL session recordings (`<sessionId>.jsonl`, served by `GET /api/recordings/:id/content`): one
 * JSON object per line, written as the session runs, hashed at close (the hash is in the ledger's
 * `recording.closed`). Order: one `header`; then per run a `batch` line (the SQL as submitted), a
 * `statement` line for every statement that ran, was blocked or was held for review, and a
 * `cancel` line when the run was cancelled; finally one `end` line (absent only if the gateway
 * crashed). A batch held for review has a `review` line when it is held and, once approved, a
 * second `review` line (message `approved by <approver>…`) before the lines of the statements
 * that then ran; a denied or expired one ends with a `block` line carrying the reason. Every value in a recording is the MASKED value the client saw, never the raw one.
 * Readers should ignore line types and fields they do not know (newer gateways may add some).
 */
export const SQL_RECORDING_VERSION = 1;

export const SqlRecordingError = z.object({
  message: z.string(),
  /** SQLSTATE, or a gateway code (`unsupported`, `internal`). */
  code: z.string().optional(),
  /** 1-based character position in the run's SQL text (the `batch` line's `sql`). */
  position: z.number().int().optional(),
  detail: z.string().optional(),
  hint: z.string().optional(),
});
export type SqlRecordingError = z.infer<typeof SqlRecordingError>;

export const SqlRecordingLine = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('header'),
    version: z.number().int(),
    sessionId: z.string(),
    targetId: z.string(),
    grantId: z.string(),
    username: z.string(),
    level: z.string(),
    readOnly: z.boolean(),
    /** How many result rows of each statement the recording keeps (`recording.sqlResultRows`). */
    resultRows: z.number().int(),
    startedAt: z.string(),
  }),
  z.object({ type: z.literal('batch'), at: z.string(), runId: z.string(), sql: z.string() }),
  z.object({
    type: z.literal('statement'),
    /** When the statement started (the run's start for its first statement). */
    at: z.string(),
    runId: z.string(),
    /** 0-based position in the run's batch. */
    index: z.number().int(),
    /** The statement's text (the whole batch for SQL that does not parse), masked like the ledger's. */
    sql: z.string(),
    /**
     * What the guard decided. `block` and `review` lines record a refusal or a hold, not a run:
     * nothing of their batch ran then (an approved batch's statements follow as `allow` lines).
     */
    verdict: z.enum(['allow', 'block', 'review']),
    rule: z.string().optional(),
    /** The guard's message for `block` / `review` (or the approver's decision and reason). */
    message: z.string().optional(),
    reviewId: z.string().optional(),
    durationMs: z.number(),
    /** Rows sent (row-returning statements) or affected; null when unknown (error, cancel, block). */
    rowCount: z.number().int().nullable(),
    /** The client's result was cut at the session's row cap. */
    truncated: z.boolean(),
    /** The command tag's verb (SELECT, INSERT, …); null when the statement did not complete. */
    command: z.string().nullable(),
    columns: z.array(SqlColumn),
    /** The first `resultRows` rows, exactly as sent to the client (masked). */
    rows: z.array(z.array(z.string().nullable())),
    /** `[rowIndex, columnIndex]` in `rows` of every masked cell. */
    masked: z.array(z.tuple([z.number().int(), z.number().int()])),
    error: SqlRecordingError.optional(),
    /** PostgreSQL's notices while it ran, as sent to the client (masked). */
    notices: z
      .array(
        z.object({
          severity: z.string(),
          message: z.string(),
          code: z.string().optional(),
          detail: z.string().optional(),
          hint: z.string().optional(),
        }),
      )
      .optional(),
    /** The statement was running when the run was cancelled. */
    cancelled: z.boolean().optional(),
  }),
  z.object({
    type: z.literal('cancel'),
    at: z.string(),
    runId: z.string(),
    /** The statement that was running, if one was. */
    index: z.number().int().optional(),
  }),
  z.object({
    type: z.literal('end'),
    at: z.string(),
    reason: z.string(),
    /** How the session ended (`closed` frame's code), when the session said so. */
    code: z.string().optional(),
    /** Statements that completed during the session. */
    statements: z.number().int().optional(),
  }),
]);
export type SqlRecordingLine = z.infer<typeof SqlRecordingLine>;
export type SqlRecordingLineOf<T extends SqlRecordingLine['type']> = Extract<SqlRecordingLine, { type: T }>;
