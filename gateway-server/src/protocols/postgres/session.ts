// One SQL session through the gateway: a dedicated pg.Client on the target, opened with the
// stored credential, that runs guarded batches and streams masked results.
//
// Order of things for every batch (`run`):
//   1. analyzeBatch + evaluateBatch, before anything reaches the database. A batch that does not
//      parse gets `error` (the parser's message and position); a batch with any blocked statement
//      gets `blocked` and NOTHING in it runs. A batch whose verdict is `review` is held for an
//      approver (see "Statement review" below); without review hooks it is refused like `blocked`.
//   2. The statements run one by one, each exactly as the parser cut it out of the batch (one
//      statement per extended-protocol Parse, so nothing can smuggle in a second statement).
//      SELECTs are read in pages of 500 from an unnamed portal (portal-reader.ts: Parse, Bind,
//      Describe and Execute leave in one write, so a short result costs one round trip) and the
//      gateway holds at most one page whatever the result size; at the row cap the portal is
//      closed and `done.truncated` is true. Outside a transaction block, once the result's types
//      and tables are known to the session, the Sync goes in the same write too (one-shot mode:
//      Execute(cap + 1), flow control by pausing the socket, about two pages held). Other
//      statements run plainly.
//   3. Every cell goes through masker.maskCell (column rules by schema.table.column, then value
//      detectors) before it is sent; masked cells are reported by coordinates.
//
// Transactions:
//   - `read` sessions: the connection starts with `default_transaction_read_only=on` (a startup
//     parameter), so every transaction PostgreSQL starts for the session is read-only. A single
//     statement runs in its own implicit transaction; several run inside BEGIN READ ONLY … COMMIT.
//     PostgreSQL (14+) reports the parameter whenever it changes: a watchdog (watchReadOnly)
//     closes the session the moment it is turned off — by RESET/SET the guard missed, a function
//     body or a computed set_config() — before another batch can run (the statement that did it
//     ran read-only itself). A server that does not report it gets BEGIN READ ONLY around every
//     batch. On top of that the guard blocks, in read sessions, every `read-write-override` tag,
//     transaction control (BEGIN, COMMIT, ROLLBACK, savepoints) and, as everywhere, `set-role` /
//     `set-session-authorization`. What a statement can change is decided by PostgreSQL
//     (SQLSTATE 25006), not by parsing: functions with side effects, nextval(), writable CTEs
//     all fail in the database.
//   - `write`/`admin` sessions: a batch of several statements runs as one transaction (like
//     `psql -c "a; b"`): an error rolls the whole batch back. A single statement runs in
//     autocommit (so VACUUM, CREATE INDEX CONCURRENTLY work). Users may manage transactions
//     themselves (BEGIN … COMMIT across runs); the gateway then adds no BEGIN/COMMIT of its own and
//     reads its portals inside the user's transaction.
//
// Ledger: statements are recorded in `sql.statements` events queued behind them (Ledger.enqueue,
// group commit) instead of holding up every result for a transaction of its own; the statements of
// a session that one group write takes share one event (recordStatement). Errors and cancels get
// an event of their own; they, refusals and reviews are awaited. A failed write closes the
// session; at most AUDIT_BEHIND_MAX statements may be pending before the next batch waits for
// them; the session's end is recorded after all of them.
//
// Statement review (issue 5; sessions with `review` hooks: all of them when the gateway has reviews):
//   - the EXACT batch text is held (`hold`), with details for approvers: statement kinds, tables,
//     the rule and message and, when the deciding rule has `explain: true`, PostgreSQL's row
//     estimate for each DML statement (`EXPLAIN (FORMAT JSON)`, never ANALYZE, in a read-only
//     transaction or read-only savepoint that is rolled back). Nothing of the batch runs.
//   - the client gets `review` (pending) at once; the run stays active, so other runs get `busy`.
//     `cancel` of the run, or the session ending (revoked, expired, disconnected), cancels the
//     review.
//   - approved: the approval is consumed for this exact text (once), `review` (approved) is sent
//     and the batch runs through the same path as an allowed batch (masking, portals, recording);
//     its ledger `sql.statement` events carry verdict `review`, the review id and the approver.
//     Denied / expired: `blocked` with code `review_denied` / `review_expired` and the reason.
//
// The credential is used for pg.Client only: it is never logged, never part of an error, never
// sent. Result values never reach the ledger (statements do, with counts and durations).

import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { AccessLevel, SqlColumn, SqlServerMessage } from '@sallyport/protocol';
import pg from 'pg';
import type { ReviewOutcome } from '../../access/reviews';
import type { Ledger } from '../../audit';
import { CERTIFICATE_PROBLEM_TEXT, certificateProblem } from '../../common/tls-errors';
import type { ColumnRef, Masker } from '../../masking';
import {
  analyzeBatch,
  DEFAULT_SQL_RULES,
  evaluateBatch,
  initSqlParser,
  type SqlRule,
  type SqlVerdict,
  type StatementInfo,
} from './guard';
import { PortalReader } from './portal-reader';
import { noopSqlRecorder, type SqlRecorder } from './recorder';

export const DEFAULT_SQL_MAX_ROWS = 10_000;
export const DEFAULT_SQL_FETCH_SIZE = 500;

/** Guard rules added in front of the configured ones for `read` sessions. */
export const READ_ONLY_SQL_RULES: SqlRule[] = [
  {
    name: 'read-only-override',
    action: 'block',
    message:
      'This session is read-only: statements that could make it read-write (SET/RESET of transaction_read_only, RESET ALL, READ WRITE) are not allowed.',
    match: { tags: ['read-write-override'] },
  },
  {
    name: 'read-only-transaction-control',
    action: 'block',
    message:
      'In a read-only session the gateway runs every batch in its own read-only transaction: BEGIN, COMMIT, ROLLBACK and savepoints are not allowed.',
    match: { kinds: ['TransactionStmt'] },
  },
];

/** The rule a refusal names when a held statement could never run in a read-only session. */
export const READ_ONLY_SESSION_RULE = 'read-only-session';

/**
 * Statements PostgreSQL refuses in every read-only transaction (SQLSTATE 25006): DML and table
 * DDL. Deliberately short: a statement left out (a DO block that only reads) may still go to review.
 */
const WRITE_KINDS = new Set([
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'TruncateStmt',
  'CreateStmt',
  'CreateTableAsStmt',
  'DropStmt',
  'AlterTableStmt',
  'IndexStmt',
  'ViewStmt',
  'RenameStmt',
]);

function writesData(s: StatementInfo): boolean {
  return WRITE_KINDS.has(s.kind) || s.tags.includes('writable-cte') || s.tags.includes('select-into');
}

/** The SQL levels and whether they are read-only; other levels (shell, exec-only) are not SQL. */
export function sqlLevelReadOnly(level: AccessLevel): boolean | undefined {
  if (level === 'read') return true;
  if (level === 'write' || level === 'admin') return false;
  return undefined;
}

export interface SqlTarget {
  id: string;
  host: string;
  port: number;
  user: string;
  database: string;
  tls: 'disable' | 'require' | 'verify-full';
  /** PEM CA certificate(s) that verify-full checks the server against, instead of the system's. */
  tlsCa?: string;
}

/** TLS options for connections to the target: the session's and each cancel request's. */
function sslOptionsFor(target: SqlTarget): false | tls.ConnectionOptions {
  if (target.tls === 'disable') return false;
  if (target.tls === 'require') return { rejectUnauthorized: false };
  // The name checked (and SNI) comes from host; an IP is checked against the IP SANs.
  return { rejectUnauthorized: true, ...(target.tlsCa ? { ca: target.tlsCa } : {}) };
}

/** pg's words when the server answers an SSLRequest with "no". */
const NO_TLS_AT_SERVER = 'The server does not support SSL connections';

/** What an operator can do about a refused TLS connection, said once where it happens. */
function tlsHint(err: unknown, target: SqlTarget): string {
  if (target.tls !== 'disable' && err instanceof Error && err.message.includes(NO_TLS_AT_SERVER)) {
    return ` (tls: ${target.tls}; the server does not accept TLS connections: turn ssl on in its configuration)`;
  }
  const problem = certificateProblem(err);
  switch (problem) {
    case undefined:
      return '';
    case 'wrong-name':
      return ` (tls: verify-full; the target's host must be a name or address the server's certificate carries)`;
    case 'untrusted':
      return target.tlsCa
        ? ` (tls: verify-full; the target's tlsCa did not vouch for the server's certificate)`
        : ` (tls: verify-full; the server's certificate is not from a CA the gateway trusts: give its CA as the target's tlsCa)`;
    default:
      return ` (tls: verify-full; the server's certificate ${CERTIFICATE_PROBLEM_TEXT[problem]})`;
  }
}

export type SqlCloseCode = Extract<SqlServerMessage, { type: 'closed' }>['code'];

/**
 * Statement review for one session (the route binds the review service to the session's grant and
 * requester). Without it, `review` verdicts are refused like `block`.
 */
export interface SqlReviewHooks {
  /** Holds the exact batch text for an approver; `outcome` settles on a decision, expiry or cancel. */
  hold(input: { text: string; rule: string; message: string; details: Record<string, unknown> }): Promise<{
    review: { id: string; expiresAt: string };
    outcome: Promise<ReviewOutcome>;
  }>;
  /** Marks the approval used, once, for this exact text; false when that is not possible. */
  consume(reviewId: string, text: string): Promise<boolean>;
  /** The run stopped waiting (cancelled, session ended): the pending review is void. */
  cancel(reviewId: string, why: string): Promise<void>;
}

/** What approvers see next to a DML statement when the rule asks for an EXPLAIN estimate. */
export type SqlExplainEstimate = { statementIndex: number; kind: string } & (
  | { planRows: number }
  | { error: string }
);

export interface SqlSessionOptions {
  target: SqlTarget;
  /** The stored credential (password). */
  password: string | undefined;
  grant: { id: string; level: AccessLevel };
  actor: { username: string; kind: 'user' | 'service' };
  masker: Masker;
  ledger: Ledger;
  /** Sends one frame to the client. May return a promise to apply backpressure. */
  send(frame: SqlServerMessage): void | Promise<void>;
  sessionId?: string;
  /** Guard rules (default DEFAULT_SQL_RULES). Read sessions get READ_ONLY_SQL_RULES in front. */
  rules?: SqlRule[];
  /** Most rows one statement sends to the client (default 10 000). */
  maxRows?: number;
  /** Rows per page read from a portal (default 500). */
  fetchSize?: number;
  recorder?: SqlRecorder;
  /** Statement review; without it a `review` verdict is refused (`blocked`). */
  review?: SqlReviewHooks;
  log?: { warn(o: object, m: string): void; debug?(o: object, m: string): void };
  /** Called once, after the session has ended (frame sent, connection closed, ledger written). */
  onClosed?(code: SqlCloseCode, reason: string): void;
  connectTimeoutMs?: number;
}

/** Thrown by SqlSession.open; `message` is safe to show (no credential, no connection string). */
export class SqlSessionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SqlSessionError';
  }
}

interface RunRequest {
  id: string;
  sql: string;
  maxRows?: number | undefined;
}

interface ActiveRun {
  id: string;
  cancelRequested: boolean;
  done: Promise<void>;
  /** The run is preparing a review or waiting for one: nothing of it runs on the database. */
  reviewing?: boolean;
  /** Set while the run waits for an approver; `stop` ends the wait (the review is then cancelled). */
  held?: { reviewId: string; stop(why: string): void };
  /** PostgreSQL's notices during the run so far (onNotice caps them). */
  notices?: number;
  /** The run's notices went past NOTICES_PER_RUN and the client was told. */
  noticesCut?: boolean;
}

interface TableInfo {
  schema: string;
  table: string;
  columns: Map<number, string>;
}

interface Described {
  columns: SqlColumn[];
  refs: ColumnRef[];
}

class Cancelled extends Error {}

/** pg parses nothing: every value is sent as PostgreSQL's text form. */
const RAW_TEXT = {
  getTypeParser: (() => (value: string) => value) as unknown as typeof pg.types.getTypeParser,
};

const CANCEL_REQUEST_CODE = 80877102;
/** SSLRequest: length 8, code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
/** What PostgreSQL itself answers for SQL its grammar rejects (the guard uses the same grammar). */
const SYNTAX_ERROR_SQLSTATE = '42601';
const CLOSE_WAIT_MS = 3000;
/** Statement kinds that get an EXPLAIN estimate for approvers (plus writable CTEs). */
const DML_KINDS = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);
/** Longest an approvers' EXPLAIN may plan (it never executes the statement). */
const EXPLAIN_TIMEOUT_MS = 5000;
const SESSION_ENDED = 'session ended';
/** Most notices one statement, and one run, sends to the client (then one saying the rest are not shown). */
const NOTICES_PER_STATEMENT = 100;
const NOTICES_PER_RUN = 500;
/** Longest notice text (message, detail, hint) sent; longer ones are clipped. */
const NOTICE_TEXT_MAX = 4096;
/** Most statements one `sql.statements` ledger event lists. */
const STATEMENTS_PER_EVENT = 200;
/** …and at most this much SQL text (a long statement starts an event of its own). */
const STATEMENT_CHARS_PER_EVENT = 64 * 1024;
/** Statements of one session that may wait for the ledger before the next batch waits too. */
const AUDIT_BEHIND_MAX = 256;
const READ_ONLY_LOST =
  'the session stopped being read-only (default_transaction_read_only was turned off, e.g. by a function): it is closed';
const CANCELLED_BY_CLIENT = 'cancelled by the requester';

/** Runs a catalogue query, values as text; rows as PostgreSQL's text. */
type Lookup = (text: string, values: string[]) => Promise<(string | null)[][]>;

/** A `sql.statements` ledger event not yet taken by a write: statements may still join it. */
interface OpenStatements {
  statements: Record<string, unknown>[];
  /** Characters of SQL text in `statements`. */
  chars: number;
  written: Promise<void>;
}

type StatementOutcome = { rowCount: number | null; truncated: boolean; command: string };

export class SqlSession {
  readonly id: string;
  readonly readOnly: boolean;
  readonly maxRows: number;
  private readonly client: pg.Client;
  private readonly rules: SqlRule[];
  private readonly fetchSize: number;
  private readonly recorder: SqlRecorder;
  private readonly startedAt = Date.now();
  private readonly typeNames = new Map<number, string>();
  private allTypesLoaded = false;
  private readonly tables = new Map<number, TableInfo | null>();
  /** Relation names (as the guard saw them) whose results were described in this session. */
  private readonly describedRelations = new Set<string>();
  private active: ActiveRun | undefined;
  private closing: Promise<void> | undefined;
  private connected = false;
  private connectionLost = false;
  /** Settles when the last paged statement's exchange has ended (ReadyForQuery). */
  private settling: Promise<void> | undefined;
  /** Ledger events queued by auditBehind and not yet written; the last one's settlement. */
  private auditsPending = 0;
  private lastAudit: Promise<void> = Promise.resolve();
  /** The `sql.statements` event that later statements may still join (see recordStatement). */
  private openStatements: OpenStatements | undefined;
  private ledgerFailed = false;
  /** Read sessions: PostgreSQL reported default_transaction_read_only=on (PG ≥ 14 reports it). */
  private readOnlyWatched = false;
  /** Read sessions: something turned the session default off; nothing else runs. */
  private readOnlyLost = false;
  private statementsRun = 0;
  /** The statement running now, which PostgreSQL's notices belong to (see onNotice). */
  private noticeTarget: { run: ActiveRun; statementIndex: number; sent: number; cut?: boolean } | undefined;

  private constructor(
    private readonly opts: SqlSessionOptions,
    readOnly: boolean,
  ) {
    this.id = opts.sessionId ?? randomUUID();
    this.readOnly = readOnly;
    this.maxRows = Math.max(1, opts.maxRows ?? DEFAULT_SQL_MAX_ROWS);
    this.fetchSize = Math.max(1, opts.fetchSize ?? DEFAULT_SQL_FETCH_SIZE);
    this.recorder = opts.recorder ?? noopSqlRecorder;
    const rules = opts.rules ?? DEFAULT_SQL_RULES;
    this.rules = readOnly ? [...READ_ONLY_SQL_RULES, ...rules] : rules;
    const { target } = opts;
    this.client = new pg.Client({
      host: target.host,
      port: target.port,
      user: target.user,
      database: target.database,
      password: opts.password,
      ssl: sslOptionsFor(target),
      application_name: `sallyport:${opts.actor.username}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 63),
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
      keepAlive: true,
      // The database itself defaults every transaction of a read session to read-only.
      ...(readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
    });
  }

  /** Connects, records `sql.session.started` and sends `ready`. */
  static async open(opts: SqlSessionOptions): Promise<SqlSession> {
    const readOnly = sqlLevelReadOnly(opts.grant.level);
    if (readOnly === undefined) {
      throw new SqlSessionError('wrong_level', `a ${opts.grant.level} grant does not allow SQL sessions`);
    }
    await initSqlParser();
    const session = new SqlSession(opts, readOnly);
    await session.connect();
    return session;
  }

  private get ledgerBase() {
    const { actor, target } = this.opts;
    return { actor: actor.username, actorKind: actor.kind, subject: actor.username, targetId: target.id };
  }

  private async connect(): Promise<void> {
    const { target, grant } = this.opts;
    this.client.on('error', (err) => this.onConnectionError(err));
    this.client.on('notice', (msg) => this.onNotice(msg));
    this.client.on('end', () => this.onConnectionError(new Error('the connection was closed')));
    if (this.readOnly) this.watchReadOnly();
    try {
      await this.client.connect();
      this.connected = true;
    } catch (err) {
      const message = `could not connect to target ${target.id}: ${this.safeText(errorText(err))}${tlsHint(err, target)}`;
      await this.opts.ledger
        .append({
          ...this.ledgerBase,
          kind: 'sql.session.failed',
          data: { sessionId: this.id, grantId: grant.id, level: grant.level, error: message },
        })
        .catch(() => {});
      await this.client.end().catch(() => {});
      throw new SqlSessionError('connect_failed', message);
    }
    try {
      await this.opts.ledger.append({
        ...this.ledgerBase,
        kind: 'sql.session.started',
        data: { sessionId: this.id, grantId: grant.id, level: grant.level, readOnly: this.readOnly },
      });
      await this.recorder.start({
        sessionId: this.id,
        grantId: grant.id,
        targetId: target.id,
        username: this.opts.actor.username,
        level: grant.level,
        readOnly: this.readOnly,
        startedAt: new Date(this.startedAt),
      });
    } catch (err) {
      this.closing = Promise.resolve();
      await this.client.end().catch(() => {});
      throw err;
    }
    await this.emit({
      type: 'ready',
      sessionId: this.id,
      targetId: target.id,
      grantId: grant.id,
      level: grant.level,
      readOnly: this.readOnly,
      maxRows: this.maxRows,
    });
  }

  get busy(): boolean {
    return this.active !== undefined;
  }

  get isClosed(): boolean {
    return this.closing !== undefined;
  }

  /** Runs one batch. Resolves when its terminal frame has been sent; never rejects. */
  run(req: RunRequest): Promise<void> {
    if (this.closing) {
      return this.emit({
        type: 'error',
        id: req.id,
        code: 'session_closed',
        message: 'the session is closed',
      });
    }
    if (this.active) {
      const { id, held } = this.active;
      return this.emit({
        type: 'error',
        id: req.id,
        code: 'busy',
        message: held
          ? `run "${id}" is waiting for approval (review ${held.reviewId}): wait for it or cancel it`
          : `run "${id}" is still running: wait for it or cancel it`,
      });
    }
    const run: ActiveRun = { id: req.id, cancelRequested: false, done: Promise.resolve() };
    this.active = run;
    run.done = this.execute(run, req)
      .catch((err: unknown) => {
        this.opts.log?.warn({ err: errorText(err), sessionId: this.id }, 'sql run failed unexpectedly');
        return this.emit({ type: 'error', id: req.id, code: 'internal', message: 'internal gateway error' });
      })
      .finally(() => {
        if (this.active === run) this.active = undefined;
      });
    return run.done;
  }

  /** Cancels the run `id` if it is the one running (a PostgreSQL cancel request). */
  async cancel(id: string): Promise<void> {
    const run = this.active;
    if (!run || run.id !== id) return;
    if (run.reviewing) {
      // Nothing runs on the database: stop waiting (the review is cancelled by the run itself).
      run.cancelRequested = true;
      run.held?.stop(CANCELLED_BY_CLIENT);
      return;
    }
    if (!run.cancelRequested) {
      run.cancelRequested = true;
      await this.sendCancelRequest();
    }
  }

  /**
   * Ends the session: cancels a running statement, tells the client why (`closed`), closes the
   * connection and records `sql.session.ended`. Idempotent; resolves once everything is done.
   */
  close(reason: string, code: SqlCloseCode): Promise<void> {
    this.closing ??= this.shutdown(reason, code);
    return this.closing;
  }

  private async shutdown(reason: string, code: SqlCloseCode): Promise<void> {
    const run = this.active;
    if (run) {
      run.cancelRequested = true;
      if (run.reviewing) run.held?.stop(SESSION_ENDED);
      else if (!this.connectionLost) await this.sendCancelRequest();
      await Promise.race([run.done, sleep(CLOSE_WAIT_MS)]);
    }
    await this.emit({ type: 'closed', reason, code }).catch(() => {});
    await endClient(this.client);
    await this.lastAudit;
    const recording = await this.recorder.finish(reason).catch((err: unknown) => {
      this.opts.log?.warn({ err: errorText(err), sessionId: this.id }, 'sql recording did not finish');
      return undefined;
    });
    await this.opts.ledger
      .enqueue(
        {
          ...this.ledgerBase,
          kind: 'sql.session.ended',
          data: {
            sessionId: this.id,
            grantId: this.opts.grant.id,
            code,
            reason,
            statements: this.statementsRun,
            durationMs: Date.now() - this.startedAt,
            ...(recording?.hash ? { recordingHash: recording.hash } : {}),
          },
        },
        { soon: true },
      )
      .catch((err: unknown) =>
        this.opts.log?.warn(
          { err: errorText(err), sessionId: this.id },
          'could not record sql.session.ended',
        ),
      );
    this.opts.onClosed?.(code, reason);
  }

  /**
   * The read-only watchdog. PostgreSQL (14+) reports default_transaction_read_only in a
   * ParameterStatus message at start-up and whenever it changes, before the ReadyForQuery of the
   * statement that changed it. While it reports `on`, a single statement can run in its own
   * implicit transaction, which PostgreSQL makes read-only. A function body, a dynamic
   * set_config() or anything else the guard cannot see that turns it off closes the session
   * before another batch runs (the statement that did it ran read-only itself). Servers that do
   * not report it get an explicit BEGIN READ ONLY around every batch instead.
   */
  private watchReadOnly(): void {
    const connection = (this.client as unknown as { connection: NodeJS.EventEmitter }).connection;
    connection.on('parameterStatus', (msg: { parameterName: string; parameterValue: string }) => {
      if (msg.parameterName !== 'default_transaction_read_only') return;
      if (msg.parameterValue === 'on') {
        if (!this.readOnlyLost) this.readOnlyWatched = true;
        return;
      }
      if (this.readOnlyLost) return;
      this.readOnlyLost = true;
      this.readOnlyWatched = false;
      if (!this.connected) return; // connect() fails below: the start-up value must be on
      void this.auditBehind('sql.session.read_only_lost', { value: msg.parameterValue }).catch(() => {});
      void this.close(READ_ONLY_LOST, 'error');
    });
  }

  private onConnectionError(err: Error): void {
    if (this.closing || !this.connected) return;
    this.connectionLost = true;
    this.opts.log?.warn(
      { err: this.safeText(err.message), sessionId: this.id },
      'sql target connection lost',
    );
    // A run in flight reports its error first: close() waits for it.
    void this.close(lostReason(err), 'connection_lost');
  }

  /**
   * PostgreSQL's notices (RAISE NOTICE, VACUUM VERBOSE, `… does not exist, skipping`) go to the
   * client with the statement that caused them, masked like errors; at most NOTICES_PER_STATEMENT
   * each and NOTICES_PER_RUN per run (a loop of RAISE NOTICE must not flood the channel). Notices
   * outside a user's statement (the gateway's own BEGIN/COMMIT, EXPLAIN for approvers) are not sent.
   */
  private onNotice(msg: {
    severity?: string | undefined;
    message?: string | undefined;
    code?: string | undefined;
    detail?: string | undefined;
    hint?: string | undefined;
  }): void {
    const target = this.noticeTarget;
    if (!target || this.closing) return;
    const { run } = target;
    target.sent++;
    run.notices = (run.notices ?? 0) + 1;
    const runOver = run.notices > NOTICES_PER_RUN;
    if (target.sent > NOTICES_PER_STATEMENT || runOver) {
      // Said once per statement: one past its own limit that then takes the run past the run's says
      // nothing more, and the next statement says that the run's limit is reached.
      if (!target.cut && !run.noticesCut) {
        void this.emit({
          type: 'notice',
          id: run.id,
          statementIndex: target.statementIndex,
          severity: 'NOTICE',
          message: `more than ${runOver ? `${NOTICES_PER_RUN} notices in this run` : `${NOTICES_PER_STATEMENT} notices in this statement`}: the rest are not shown`,
        }).catch(() => {});
        if (runOver) run.noticesCut = true;
      }
      target.cut = true;
      return;
    }
    // Clipped before masking: a RAISE NOTICE of megabytes must not cost megabytes of scanning.
    const text = (t: string) =>
      this.safeText(t.length > NOTICE_TEXT_MAX ? `${t.slice(0, NOTICE_TEXT_MAX)}…` : t);
    void this.emit({
      type: 'notice',
      id: run.id,
      statementIndex: target.statementIndex,
      severity: msg.severity ?? 'NOTICE',
      message: text(msg.message ?? ''),
      ...(msg.code ? { code: msg.code } : {}),
      ...(msg.detail ? { detail: text(msg.detail) } : {}),
      ...(msg.hint ? { hint: text(msg.hint) } : {}),
    }).catch(() => {});
  }

  // ------------------------------------------------------------------------------------- runs

  private async execute(run: ActiveRun, req: RunRequest): Promise<void> {
    const t0 = performance.now();
    const { id, sql } = req;
    const at = new Date();
    const analysis = analyzeBatch(sql);
    this.recorder.batch(id, sql, at, analysis.ok ? analysis.statements.map((s) => s.text) : null);
    const verdict = evaluateBatch(analysis, this.rules);
    if (!analysis.ok) {
      await this.audit('sql.blocked', {
        runId: id,
        verdict: 'block',
        rule: 'syntax-error',
        message: verdict.message,
        statement: this.safeText(sql),
      });
      return this.emit({
        type: 'error',
        id,
        code: SYNTAX_ERROR_SQLSTATE,
        message: analysis.error.message,
        ...(analysis.error.position !== undefined ? { position: analysis.error.position } : {}),
      });
    }
    if (verdict.action === 'block' || (verdict.action === 'review' && !this.opts.review)) {
      // Without review hooks (no review service) nobody can approve: refused, nothing runs.
      const message =
        verdict.action === 'review'
          ? `needs review, and statement review is not available on this gateway: ${verdict.message}`
          : verdict.message;
      await this.audit('sql.blocked', {
        runId: id,
        verdict: verdict.action,
        rule: verdict.rule,
        message,
        statementIndex: verdict.statementIndex,
        statement: this.safeText(verdict.statement ?? ''),
      });
      return this.emit({
        type: 'blocked',
        id,
        statementIndex: verdict.statementIndex ?? 0,
        rule: verdict.rule ?? 'blocked',
        message,
        statement: verdict.statement ?? '',
      });
    }
    const statements = analysis.statements;
    const copy = statements.find((s) => s.kind === 'CopyStmt');
    if (copy) {
      return this.emit({
        type: 'error',
        id,
        code: 'unsupported',
        statementIndex: copy.index,
        message: 'COPY is not available in gateway SQL sessions yet: use SELECT, or INSERT … VALUES',
      });
    }
    const cannotRun = verdict.action === 'review' && this.readOnly ? statements.find(writesData) : undefined;
    if (cannotRun) {
      // PostgreSQL would refuse it in this read-only session anyway (25006): no approver is asked.
      const message = `This session is read-only: ${cannotRun.kind} cannot run in it, so it is not sent for review. Request write access to this target to run it.`;
      await this.audit('sql.blocked', {
        runId: id,
        verdict: 'block',
        rule: READ_ONLY_SESSION_RULE,
        message,
        statementIndex: cannotRun.index,
        statement: this.safeText(cannotRun.text),
      });
      return this.emit({
        type: 'blocked',
        id,
        statementIndex: cannotRun.index,
        rule: READ_ONLY_SESSION_RULE,
        message,
        statement: cannotRun.text,
      });
    }
    if (verdict.action === 'review' && this.opts.review) {
      return this.holdForReview(run, req, statements, verdict, this.opts.review);
    }
    return this.runBatch(run, req, statements, t0);
  }

  /**
   * Holds the exact batch for an approver and waits; runs it (once, unchanged) when approved.
   * Resolves when the run's terminal frame has been sent.
   */
  private async holdForReview(
    run: ActiveRun,
    req: RunRequest,
    statements: StatementInfo[],
    verdict: SqlVerdict,
    hooks: SqlReviewHooks,
  ): Promise<void> {
    const { id, sql } = req;
    const rule = verdict.rule ?? 'review';
    const statementIndex = verdict.statementIndex ?? 0;
    const statement = verdict.statement ?? '';
    run.reviewing = true;
    const details: Record<string, unknown> = {
      statements: statements.length,
      statementIndex,
      kinds: unique(statements.map((s) => s.kind)),
      relations: unique(statements.flatMap((s) => s.relations)),
      rule,
      message: verdict.message,
    };
    if (verdict.explain) details.explain = await this.explainEstimates(statements);
    const refused = async (
      outcome: string,
      extra: Record<string, unknown>,
      frame: SqlServerMessage,
    ): Promise<void> => {
      await this.audit('sql.blocked', {
        runId: id,
        verdict: 'review',
        rule,
        outcome,
        statementIndex,
        statement: this.safeText(statement),
        ...extra,
      });
      return this.emit(frame);
    };
    if (run.cancelRequested) {
      return refused(
        'cancelled',
        { reason: this.closing ? SESSION_ENDED : CANCELLED_BY_CLIENT },
        {
          type: 'cancelled',
          id,
        },
      );
    }

    let held: Awaited<ReturnType<SqlReviewHooks['hold']>>;
    try {
      held = await hooks.hold({ text: sql, rule, message: verdict.message, details });
    } catch (err) {
      this.opts.log?.warn({ err: errorText(err), sessionId: this.id }, 'could not hold a batch for review');
      return refused(
        'review_unavailable',
        {},
        {
          type: 'error',
          id,
          code: 'review_unavailable',
          statementIndex,
          message: 'this batch needs review but could not be held for an approver; nothing ran',
        },
      );
    }
    const reviewId = held.review.id;
    let why: string | undefined;
    let wake = () => {};
    const stopped = new Promise<'stopped'>((resolve) => {
      wake = () => resolve('stopped');
    });
    run.held = {
      reviewId,
      stop: (w) => {
        why ??= w;
        wake();
      },
    };
    if (run.cancelRequested) run.held.stop(this.closing ? SESSION_ENDED : CANCELLED_BY_CLIENT);
    await this.emit({
      type: 'review',
      id,
      statementIndex,
      rule,
      message: verdict.message,
      statement,
      reviewId,
      status: 'pending',
      expiresAt: held.review.expiresAt,
    });
    const outcome = await Promise.race([held.outcome, stopped]);
    run.held = undefined;

    if (outcome === 'stopped' || (outcome.status === 'approved' && run.cancelRequested)) {
      // An approval that arrives as the run is cancelled is not used (nor consumed).
      const reason = why ?? (this.closing ? SESSION_ENDED : CANCELLED_BY_CLIENT);
      await hooks
        .cancel(reviewId, reason)
        .catch((err: unknown) =>
          this.opts.log?.warn(
            { err: errorText(err), sessionId: this.id, reviewId },
            'could not cancel a review',
          ),
        );
      return refused('cancelled', { reviewId, reason }, { type: 'cancelled', id });
    }
    const { review } = outcome;
    const by = review.decidedBy ?? 'sallyport';
    const because = review.decisionReason ? `: ${review.decisionReason}` : '';
    if (outcome.status === 'approved') {
      if (!(await hooks.consume(reviewId, sql))) {
        return refused(
          'review_not_usable',
          { reviewId, decidedBy: by },
          {
            type: 'error',
            id,
            code: 'review_not_usable',
            statementIndex,
            message: `the approval of review ${reviewId} cannot be used (already used, or for another text); nothing ran`,
          },
        );
      }
      await this.emit({
        type: 'review',
        id,
        statementIndex,
        rule,
        message: `approved by ${by}${because}`,
        statement,
        reviewId,
        status: 'approved',
        decidedBy: by,
      });
      run.reviewing = false;
      // Exactly the text that was held and approved: `sql` and its statements, unchanged.
      return this.runBatch(run, req, statements, performance.now(), { reviewId, approvedBy: by });
    }
    const message =
      outcome.status === 'denied'
        ? `denied by ${by}${because}`
        : outcome.status === 'expired'
          ? `nobody approved it in time: review ${reviewId} expired; nothing ran`
          : `review ${reviewId} was cancelled${because}; nothing ran`;
    return refused(
      outcome.status,
      { reviewId, decidedBy: review.decidedBy, message: this.safeText(message) },
      {
        type: 'blocked',
        id,
        statementIndex,
        rule,
        message,
        statement,
        code: `review_${outcome.status}`,
      },
    );
  }

  /**
   * PostgreSQL's row estimate for each DML statement, for approvers. `EXPLAIN (FORMAT JSON)` only
   * plans the statement (never ANALYZE, checked on the composed text), inside a READ ONLY
   * transaction, or a read-only savepoint within the user's open transaction, rolled back either
   * way. The estimate is the rows the statement would write: the input of the top ModifyTable
   * node (whose own `Plan Rows` is 0 without RETURNING), else the top node's `Plan Rows`.
   */
  private async explainEstimates(statements: StatementInfo[]): Promise<SqlExplainEstimate[]> {
    const out: SqlExplainEstimate[] = [];
    for (const s of statements) {
      if (!DML_KINDS.has(s.kind) && !s.tags.includes('writable-cte')) continue;
      out.push({ statementIndex: s.index, kind: s.kind, ...(await this.explainOne(s)) });
    }
    return out;
  }

  private async explainOne(s: StatementInfo): Promise<{ planRows: number } | { error: string }> {
    const text = `EXPLAIN (FORMAT JSON) ${s.text}\n`;
    // Belt and braces: the composed text must be exactly one EXPLAIN, without ANALYZE.
    const check = analyzeBatch(text);
    const only = check.ok && check.statements.length === 1 ? check.statements[0] : undefined;
    if (only?.kind !== 'ExplainStmt' || only.tags.includes('explain-analyze')) {
      return { error: 'this statement cannot be explained on its own' };
    }
    const status = this.client.getTransactionStatus();
    if (status !== 'I' && status !== 'T') {
      return { error: 'not estimated: the session is in a failed transaction' };
    }
    const inUserTx = status === 'T';
    try {
      await this.client.query(inUserTx ? 'SAVEPOINT sallyport_explain' : 'BEGIN READ ONLY');
      try {
        if (inUserTx) await this.client.query('SET LOCAL transaction_read_only = on');
        await this.client.query(`SET LOCAL statement_timeout = ${EXPLAIN_TIMEOUT_MS}`);
        const res = await this.client.query({ text, queryMode: 'extended' } as pg.QueryConfig);
        const rows = planRowsOf(res.rows[0]);
        return rows === undefined ? { error: 'PostgreSQL returned no row estimate' } : { planRows: rows };
      } finally {
        if (inUserTx) {
          await this.client.query('ROLLBACK TO SAVEPOINT sallyport_explain');
          await this.client.query('RELEASE SAVEPOINT sallyport_explain');
        } else {
          await this.client.query('ROLLBACK');
        }
      }
    } catch (err) {
      if (isConnectionFatal(err)) {
        this.connectionLost = true;
        void this.close(lostReason(err as Error), 'connection_lost');
      }
      return { error: this.safeText(errorText(err)) };
    }
  }

  private async runBatch(
    run: ActiveRun,
    req: RunRequest,
    statements: StatementInfo[],
    t0: number,
    approval?: { reviewId: string; approvedBy: string },
  ): Promise<void> {
    const { id, sql } = req;
    const verdictOf = approval
      ? { verdict: 'review', reviewId: approval.reviewId, approvedBy: approval.approvedBy }
      : { verdict: 'allow' };
    if (statements.length === 0) {
      return this.emit({ type: 'complete', id, statements: 0, durationMs: ms(t0) });
    }
    if (statements.some((s) => !s.readOnly)) {
      this.tables.clear(); // DDL may rename columns
      this.describedRelations.clear();
    }
    const offsets = statementOffsets(sql, statements);
    const cap = Math.min(this.maxRows, req.maxRows ?? this.maxRows);
    const userTransactions = statements.some((s) => s.kind === 'TransactionStmt');
    // The previous paged statement's exchange must be over: its ReadyForQuery carries the
    // transaction status and any ParameterStatus (the read-only watchdog) sent before it.
    if (this.settling) await this.settling;
    if (this.auditsPending > AUDIT_BEHIND_MAX) await this.lastAudit;
    if (this.ledgerFailed) {
      return this.emit({
        type: 'error',
        id,
        code: 'session_closed',
        message: 'the audit ledger cannot be written: the session is closed',
      });
    }
    if (this.readOnlyLost) {
      return this.emit({ type: 'error', id, code: 'session_closed', message: READ_ONLY_LOST });
    }
    // One statement runs in its own implicit transaction (read-only in read sessions, by the
    // session default that the watchdog guards); several run as one explicit transaction.
    const wrap =
      (this.readOnly && !this.readOnlyWatched) ||
      (!userTransactions && statements.length > 1 && this.client.getTransactionStatus() === 'I');
    let inWrap = false;
    let current: StatementInfo | undefined;
    let statementStart = 0;
    try {
      if (wrap) {
        await this.client.query(this.readOnly ? 'BEGIN READ ONLY' : 'BEGIN');
        inWrap = true;
      }
      for (const s of statements) {
        if (run.cancelRequested) throw new Cancelled();
        current = s;
        statementStart = performance.now();
        this.noticeTarget = { run, statementIndex: s.index, sent: 0 };
        const out = await this.runStatement(run, s, cap).finally(() => {
          this.noticeTarget = undefined;
        });
        this.statementsRun++;
        const durationMs = ms(statementStart);
        await this.emit({ type: 'done', id, statementIndex: s.index, ...out, durationMs });
        void this.recordStatement({
          runId: id,
          statementIndex: s.index,
          statement: this.safeText(s.text),
          kind: s.kind,
          ...verdictOf,
          outcome: 'ok',
          command: out.command,
          rowCount: out.rowCount,
          truncated: out.truncated,
          durationMs,
        }).catch(() => {});
        current = undefined;
      }
      if (run.cancelRequested) throw new Cancelled();
      if (inWrap) {
        inWrap = false;
        await this.client.query('COMMIT');
      }
      await this.emit({ type: 'complete', id, statements: statements.length, durationMs: ms(t0) });
    } catch (err) {
      if (isConnectionFatal(err)) this.connectionLost = true;
      if (inWrap && !this.connectionLost) await this.client.query('ROLLBACK').catch(() => {});
      const cancelled =
        !this.connectionLost &&
        (err instanceof Cancelled || (run.cancelRequested && (err as { code?: string }).code === '57014'));
      if (current) {
        await this.recordStatement(
          {
            runId: id,
            statementIndex: current.index,
            statement: this.safeText(current.text),
            kind: current.kind,
            ...verdictOf,
            outcome: cancelled ? 'cancelled' : 'error',
            ...(cancelled ? {} : { sqlstate: (err as { code?: string }).code ?? null }),
            rowCount: null,
            durationMs: ms(statementStart),
          },
          true,
        );
      }
      if (cancelled) {
        await this.emit({ type: 'cancelled', id });
      } else {
        await this.emit(this.errorFrame(id, err, current, current ? offsets[current.index] : undefined));
      }
      if (this.connectionLost) {
        const reason = lostReason(err instanceof Error ? err : new Error(String(err)));
        void this.close(reason, 'connection_lost');
      }
    }
  }

  private async runStatement(run: ActiveRun, s: StatementInfo, cap: number): Promise<StatementOutcome> {
    const paged =
      s.kind === 'SelectStmt' && !s.tags.includes('select-into') && !s.tags.includes('writable-cte');
    return paged ? this.streamPortal(run, s, cap) : this.runPlain(run.id, s, cap);
  }

  /**
   * A SELECT read in pages of `fetchSize` from an unnamed portal (portal-reader.ts): one round
   * trip for a result that fits in a page, at most one page held whatever the result size.
   */
  private async streamPortal(run: ActiveRun, s: StatementInfo, cap: number): Promise<StatementOutcome> {
    // One write and one round trip (portal-reader.ts, one-shot mode) when no transaction block is
    // open and the result's columns are probably described already (its tables were seen in this
    // session): a catalogue lookup cannot run inside that exchange. A wrong guess still works; the
    // result (at most cap + 1 rows) is then buffered until the lookup can run.
    const oneShot =
      this.allTypesLoaded &&
      this.client.getTransactionStatus() === 'I' &&
      s.relations.every((r) => this.describedRelations.has(r));
    const pageSize = Math.min(this.fetchSize, cap + 1);
    const reader = new PortalReader(s.text, pageSize, oneShot ? { maxRows: cap + 1 } : undefined);
    this.client.query(reader as unknown as pg.Submittable);
    // The connection is free again at ReadyForQuery; the next batch waits for it (see runBatch).
    this.settling = reader.finished.catch(() => {});
    let sent = 0;
    let truncated = false;
    let described: Described | undefined;
    try {
      for (;;) {
        const page = await reader.next();
        if (run.cancelRequested) throw new Cancelled();
        if (!described && reader.fields) {
          // A result longer than a page keeps the connection busy: catalogue lookups go through
          // the suspended portal's exchange (a separate query would wait for it forever).
          const via: Lookup | undefined = reader.suspended
            ? (text, values) => reader.lookup(text, values)
            : undefined;
          described = await this.describe(reader.fields, via, oneShot ? () => reader.unbounded() : undefined);
          for (const r of s.relations) this.describedRelations.add(r);
          await this.sendColumns(run.id, s.index, described);
        }
        let rows = page.rows;
        if (sent + rows.length > cap) {
          rows = rows.slice(0, cap - sent);
          truncated = true;
        }
        if (rows.length > 0 && described) await this.sendRows(run.id, s.index, rows, described.refs);
        sent += rows.length;
        if (truncated || page.done) break;
      }
    } finally {
      reader.close();
    }
    // In a write session the implicit transaction commits at Sync and can still fail there.
    if (!this.readOnly) await reader.finished;
    return { command: reader.command || 'SELECT', rowCount: sent, truncated };
  }

  private async runPlain(id: string, s: StatementInfo, cap: number): Promise<StatementOutcome> {
    const res = await this.client.query({
      text: s.text,
      rowMode: 'array',
      types: RAW_TEXT,
      queryMode: 'extended',
    } as pg.QueryArrayConfig);
    const fields = res.fields ?? [];
    if (fields.length === 0) return { command: res.command ?? '', rowCount: res.rowCount, truncated: false };
    const described = await this.describe(fields);
    await this.sendColumns(id, s.index, described);
    const all = res.rows as (string | null)[][];
    const rows = all.length > cap ? all.slice(0, cap) : all;
    for (let i = 0; i < rows.length; i += this.fetchSize) {
      await this.sendRows(id, s.index, rows.slice(i, i + this.fetchSize), described.refs);
    }
    return { command: res.command ?? '', rowCount: rows.length, truncated: all.length > cap };
  }

  // ---------------------------------------------------------------------------------- frames

  private sendColumns(id: string, statementIndex: number, d: Described): Promise<void> {
    return this.emit({ type: 'columns', id, statementIndex, columns: d.columns });
  }

  private sendRows(id: string, statementIndex: number, raw: (string | null)[][], refs: ColumnRef[]) {
    const masked: [number, number][] = [];
    const rows = raw.map((row, r) =>
      row.map((value, c) => {
        const out = this.opts.masker.maskCell(value, refs[c]);
        if (out.masked) masked.push([r, c]);
        return out.value;
      }),
    );
    return this.emit({ type: 'rows', id, statementIndex, rows, masked });
  }

  private async emit(frame: SqlServerMessage): Promise<void> {
    this.recorder.frame(frame, new Date());
    await this.opts.send(frame);
  }

  private errorFrame(
    id: string,
    err: unknown,
    s: StatementInfo | undefined,
    offset: number | undefined,
  ): SqlServerMessage {
    const e = err as Partial<pg.DatabaseError> & { offset?: number };
    const frame: Extract<SqlServerMessage, { type: 'error' }> = {
      type: 'error',
      id,
      message: this.connectionLost && !e.code ? lostReason(err as Error) : this.safeText(errorText(err)),
    };
    if (e.code) frame.code = e.code;
    if (s) frame.statementIndex = s.index;
    const pos = Number(e.position);
    if (e.position && Number.isFinite(pos) && offset !== undefined) {
      const inStatement = pos + (e.offset ?? 0);
      if (inStatement >= 1) frame.position = offset + inStatement;
    }
    if (e.detail) frame.detail = this.safeText(e.detail);
    if (e.hint) frame.hint = this.safeText(e.hint);
    return frame;
  }

  /** Masks values that may appear in text meant for people or the ledger (error details quote rows). */
  private safeText(text: string): string {
    let out = this.opts.masker.maskText(text).text;
    const pw = this.opts.password;
    if (pw && pw.length >= 4) out = out.split(pw).join('***');
    return out;
  }

  /** Writes a ledger event and waits for it (refusals, reviews: rare, and worth the wait). */
  private async audit(kind: string, data: Record<string, unknown>): Promise<void> {
    await this.auditBehind(kind, data, { soon: true });
  }

  /**
   * Queues a ledger event without holding up the statement (group commit, see Ledger.enqueue):
   * at most AUDIT_BEHIND_MAX statements of a session can be waiting for the ledger, the session
   * ends only after all of them are written, and a failed write closes the session (fail closed:
   * nothing runs after a statement whose record was lost). Events keep the session's order.
   */
  private auditBehind(
    kind: string,
    data: Record<string, unknown>,
    opts: { soon?: boolean; onSeal?: () => void; events?: () => number } = {},
  ): Promise<void> {
    // Whatever comes next must follow this event in the chain: the open statements event is done.
    this.openStatements = undefined;
    const written = this.opts.ledger
      .enqueue(
        { ...this.ledgerBase, kind, data: { sessionId: this.id, grantId: this.opts.grant.id, ...data } },
        { soon: opts.soon ?? false, ...(opts.onSeal ? { onSeal: opts.onSeal } : {}) },
      )
      .then(
        () => {
          this.auditsPending -= opts.events?.() ?? 1;
        },
        (err: unknown) => {
          this.auditsPending -= opts.events?.() ?? 1;
          this.opts.log?.warn({ err: errorText(err), sessionId: this.id }, 'could not write to the ledger');
          this.ledgerFailed = true;
          void this.close('the audit ledger cannot be written: the session is closed', 'error');
          throw err;
        },
      );
    this.auditsPending++;
    this.lastAudit = written.catch(() => {});
    return written;
  }

  /**
   * Records one statement in the ledger. The statements of a session share one `sql.statements`
   * event per ledger write: the event stays open for more statements until the ledger's group
   * commit takes it (Ledger.enqueue's onSeal), so a busy session adds one row per write instead of
   * one per statement (on PGlite a row costs about 0.3 ms of CPU, as much as the statement itself).
   * The same rules as auditBehind: queued, at most AUDIT_BEHIND_MAX statements waiting, a failed
   * write closes the session. `now`: an event of its own, written at once (errors, cancels).
   */
  private recordStatement(record: Record<string, unknown>, now = false): Promise<void> {
    const open = this.openStatements;
    const chars = typeof record.statement === 'string' ? record.statement.length : 0;
    if (
      !now &&
      open &&
      open.statements.length < STATEMENTS_PER_EVENT &&
      open.chars + chars <= STATEMENT_CHARS_PER_EVENT
    ) {
      open.statements.push(record);
      open.chars += chars;
      this.auditsPending++;
      return open.written;
    }
    const statements = [record];
    const event: OpenStatements = { statements, chars, written: Promise.resolve() };
    event.written = this.auditBehind(
      'sql.statements',
      { statements },
      {
        soon: now,
        events: () => statements.length,
        onSeal: () => {
          if (this.openStatements === event) this.openStatements = undefined;
        },
      },
    );
    if (!now) this.openStatements = event;
    return event.written;
  }

  // --------------------------------------------------------------------------- column metadata

  /**
   * `via`: how to run catalogue queries (default: on the client, after what is in flight).
   * `beforeLookup`: called once before the first catalogue query, if one is needed.
   */
  private async describe(fields: pg.FieldDef[], via?: Lookup, beforeLookup?: () => void): Promise<Described> {
    const lookup: Lookup =
      via ??
      (async (text, values) => {
        const res = await this.client.query({ text, values, rowMode: 'array', types: RAW_TEXT });
        return res.rows as (string | null)[][];
      });
    const missingTypes = [...new Set(fields.map((f) => f.dataTypeID))].filter((o) => !this.typeNames.has(o));
    const missingTables = [...new Set(fields.map((f) => f.tableID))].filter(
      (o) => o !== 0 && !this.tables.has(o),
    );
    if (missingTypes.length > 0 || missingTables.length > 0) beforeLookup?.();
    if (missingTypes.length > 0) await this.loadTypes(missingTypes, lookup);
    if (missingTables.length > 0) await this.loadTables(missingTables, lookup);
    const columns: SqlColumn[] = [];
    const refs: ColumnRef[] = [];
    for (const f of fields) {
      const type = this.typeNames.get(f.dataTypeID) ?? `oid:${f.dataTypeID}`;
      const table = f.tableID ? this.tables.get(f.tableID) : undefined;
      const attname = table?.columns.get(f.columnID);
      if (table && attname !== undefined) {
        columns.push({ name: f.name, type, table: table.table, schema: table.schema });
        refs.push({ schema: table.schema, table: table.table, name: attname });
      } else {
        columns.push({ name: f.name, type });
        refs.push({ name: f.name });
      }
    }
    return { columns, refs };
  }

  private async loadTypes(missing: number[], lookup: Lookup): Promise<void> {
    if (!this.allTypesLoaded) {
      this.allTypesLoaded = true;
      const rows = await lookup('select oid, typname from pg_catalog.pg_type', []);
      for (const [oid, name] of rows) this.typeNames.set(Number(oid), String(name));
    }
    const still = missing.filter((o) => !this.typeNames.has(o));
    if (still.length === 0) return;
    const rows = await lookup('select oid, typname from pg_catalog.pg_type where oid = any($1::oid[])', [
      `{${still.join(',')}}`,
    ]);
    for (const [oid, name] of rows) this.typeNames.set(Number(oid), String(name));
  }

  private async loadTables(oids: number[], lookup: Lookup): Promise<void> {
    const rows = await lookup(
      `select c.oid, n.nspname, c.relname, a.attnum, a.attname
         from pg_catalog.pg_class c
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         join pg_catalog.pg_attribute a on a.attrelid = c.oid
        where c.oid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped`,
      [`{${oids.join(',')}}`],
    );
    for (const oid of oids) this.tables.set(oid, null);
    for (const [oidText, schema, table, attnum, attname] of rows) {
      const oid = Number(oidText);
      let t = this.tables.get(oid);
      if (!t) {
        t = { schema: String(schema), table: String(table), columns: new Map() };
        this.tables.set(oid, t);
      }
      t.columns.set(Number(attnum), String(attname));
    }
  }

  // ------------------------------------------------------------------------------------ cancel

  /** PostgreSQL's CancelRequest on a fresh TCP connection (no authentication, like psql's ^C). */
  private sendCancelRequest(): Promise<void> {
    const keys = this.client as unknown as { processID?: number | null; secretKey?: number | null };
    if (typeof keys.processID !== 'number' || typeof keys.secretKey !== 'number') return Promise.resolve();
    const packet = Buffer.alloc(16);
    packet.writeInt32BE(16, 0);
    packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    packet.writeInt32BE(keys.processID, 8);
    packet.writeInt32BE(keys.secretKey, 12);
    const { host, port } = this.opts.target;
    const ssl = sslOptionsFor(this.opts.target);
    return new Promise<void>((resolve) => {
      const sock = net.connect({ host, port });
      let secure: tls.TLSSocket | undefined;
      const done = () => {
        secure?.destroy();
        sock.destroy();
        resolve();
      };
      sock.setTimeout(5000, done);
      sock.once('error', done);
      sock.once('close', done);
      sock.once('connect', () => {
        if (!ssl) return void sock.end(packet);
        // Over TLS like the session itself (as libpq does): the cancel key does not cross the
        // network in clear text, and only the verified server gets it. No TLS, no cancel.
        sock.write(SSL_REQUEST);
        sock.once('data', (answer: Buffer) => {
          if (answer[0] !== 0x53) return done(); // 'S': the server agreed to TLS
          secure = tls.connect({
            socket: sock,
            ...ssl,
            host,
            ...(net.isIP(host) ? {} : { servername: host }),
          });
          secure.setTimeout(5000, done);
          secure.once('secureConnect', () => secure?.end(packet));
          secure.once('error', done);
          secure.once('close', done);
        });
      });
    });
  }
}

// ----------------------------------------------------------------------------------- helpers

/** Character offset (0-based) of each statement's text in the batch. */
function statementOffsets(sql: string, statements: StatementInfo[]): number[] {
  const out: number[] = [];
  let from = 0;
  for (const s of statements) {
    const at = s.text === '' ? -1 : sql.indexOf(s.text, from);
    out[s.index] = at < 0 ? from : at;
    if (at >= 0) from = at + s.text.length;
  }
  return out;
}

/** Errors after which the connection is gone: admin/crash shutdown (57P0x), connection exceptions (08xxx). */
function isConnectionFatal(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (/^57P0[1-3]$/.test(code) || code.startsWith('08'));
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

/** The estimate in one row of `EXPLAIN (FORMAT JSON)` (pg parses the json column). */
function planRowsOf(row: unknown): number | undefined {
  const value = (row as Record<string, unknown> | undefined)?.['QUERY PLAN'];
  const doc = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  type PlanNode = {
    'Node Type'?: string;
    'Plan Rows'?: number;
    'Parent Relationship'?: string;
    Plans?: PlanNode[];
  };
  const top = (Array.isArray(doc) ? (doc[0] as { Plan?: PlanNode } | undefined) : undefined)?.Plan;
  if (!top) return undefined;
  if (top['Node Type'] === 'ModifyTable') {
    const input = top.Plans?.find(
      (p) => p['Parent Relationship'] !== 'InitPlan' && p['Parent Relationship'] !== 'SubPlan',
    );
    if (typeof input?.['Plan Rows'] === 'number') return input['Plan Rows'];
  }
  return typeof top['Plan Rows'] === 'number' ? top['Plan Rows'] : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function lostReason(err: Error): string {
  const code = (err as { code?: string }).code;
  const detail = code ? ` (${err.message})` : '';
  return `the connection to the database was lost${detail}; the session is closed`;
}

function ms(t0: number): number {
  return Math.round((performance.now() - t0) * 10) / 10;
}

function sleep(msDelay: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msDelay).unref?.());
}

/** Ends the client; if the server does not answer, drops the socket. */
async function endClient(client: pg.Client): Promise<void> {
  const ended = client.end().then(
    () => true,
    () => true,
  );
  const ok = await Promise.race([ended, sleep(2000).then(() => false)]);
  if (!ok) {
    const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection
      ?.stream;
    stream?.destroy();
  }
}
