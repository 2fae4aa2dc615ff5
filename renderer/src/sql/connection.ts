import {
  type AccessLevel,
  type SqlClientMessage,
  type SqlColumn,
  SqlServerMessage,
  type SqlServerMessageOf,
} from '@sallyport/protocol';
import { createStore, type StoreApi } from 'zustand/vanilla';
import { describeSocketClose, socketUrl } from '../tabs/socket';

/** One statement's result set. Rows arrive in batches and are appended in place (see `version`). */
export interface ResultSet {
  statementIndex: number;
  columns: SqlColumn[];
  rows: Array<Array<string | null>>;
  /** Masked cells as `row * columns.length + column`. */
  masked: Set<number>;
  done: StatementDone | null;
}

export interface StatementDone {
  statementIndex: number;
  command: string;
  rowCount: number | null;
  truncated: boolean;
  durationMs?: number | undefined;
}

/**
 * `review`: the batch is held for an approver (nothing ran yet); the run is still open and goes
 * back to `running` once approved. The other statuses after `running` are final.
 */
export type RunStatus = 'running' | 'complete' | 'error' | 'blocked' | 'review' | 'cancelled' | 'closed';

export interface SqlRun {
  id: string;
  sql: string;
  /** Where `sql` starts in the editor's text (the selection's offset), for error markers. */
  offset: number;
  startedAt: number;
  status: RunStatus;
  results: ResultSet[];
  statements: StatementDone[];
  error?: Omit<SqlServerMessageOf<'error'>, 'type' | 'id'>;
  blocked?: Omit<SqlServerMessageOf<'blocked'>, 'type' | 'id'>;
  /** PostgreSQL's notices (RAISE NOTICE, warnings), in order, each with its statement. */
  notices: Array<Omit<SqlServerMessageOf<'notice'>, 'type' | 'id'>>;
  /** The statement review of this run: `pending` while held, `approved` once it may run. */
  review?: Omit<SqlServerMessageOf<'review'>, 'type' | 'id'>;
  durationMs?: number;
  cancelling?: boolean;
}

export interface SqlSessionInfo {
  sessionId: string;
  level: AccessLevel;
  readOnly: boolean;
  maxRows: number;
}

export interface SqlConnectionState {
  phase: 'connecting' | 'ready' | 'closed';
  info: SqlSessionInfo | null;
  closed: { code: string; reason: string } | null;
  run: SqlRun | null;
  /** Bumped (at most once per frame) when rows of the current run were appended in place. */
  version: number;
}

export interface SqlConnectionOptions {
  targetId: string;
  grantId: string;
  /** Called once per run, when its terminal frame arrives. */
  onRunEnd?(run: SqlRun): void;
}

let runSeq = 0;
const TERMINAL = new Set<RunStatus>(['complete', 'error', 'blocked', 'cancelled', 'closed']);
/** A run that has not ended: executing, or held for statement review. */
export const inProgress = (run: SqlRun | null | undefined): boolean =>
  run?.status === 'running' || run?.status === 'review';

/**
 * One SQL session over `/api/sql` (protocol/src/sql.ts): `open`, then one `run` at a time and
 * `cancel`. Every cell has been masked by the gateway before it arrives; `rows.masked` says which.
 * The session opens with `reviews: true`: a batch the guard holds for review keeps its run open
 * (`review` pending) until an approver decides, then streams like any other run (approved) or
 * ends `blocked` (denied, expired); `cancel` withdraws the review.
 */
export class SqlConnection {
  readonly store: StoreApi<SqlConnectionState>;
  private ws: WebSocket | null = null;
  private pendingBump = 0;

  constructor(private readonly opts: SqlConnectionOptions) {
    this.store = createStore<SqlConnectionState>()(() => ({
      phase: 'connecting',
      info: null,
      closed: null,
      run: null,
      version: 0,
    }));
  }

  connect(): void {
    const ws = new WebSocket(socketUrl('/api/sql'));
    this.ws = ws;
    ws.onopen = () =>
      this.send({ type: 'open', targetId: this.opts.targetId, grantId: this.opts.grantId, reviews: true });
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let json: unknown;
      try {
        json = JSON.parse(ev.data);
      } catch {
        return;
      }
      const parsed = SqlServerMessage.safeParse(json);
      if (parsed.success) this.onFrame(parsed.data);
    };
    ws.onclose = (ev) => {
      this.ws = null;
      const s = this.store.getState();
      this.endRun('closed');
      if (s.phase === 'closed') return;
      this.store.setState({
        phase: 'closed',
        closed: s.closed ?? { code: 'connection_lost', reason: ev.reason || describeSocketClose(ev.code) },
      });
    };
  }

  private bump(): void {
    if (this.pendingBump) return;
    this.pendingBump = requestAnimationFrame(() => {
      this.pendingBump = 0;
      this.store.setState((s) => ({ version: s.version + 1 }));
    });
  }

  private current(id: string | undefined): SqlRun | null {
    const run = this.store.getState().run;
    return run && id !== undefined && run.id === id ? run : null;
  }

  private update(run: SqlRun, patch: Partial<SqlRun>): void {
    const next = { ...run, ...patch };
    this.store.setState((s) => ({ run: next, version: s.version + 1 }));
    if (TERMINAL.has(next.status) && !TERMINAL.has(run.status)) this.opts.onRunEnd?.(next);
  }

  private endRun(status: RunStatus): void {
    const run = this.store.getState().run;
    if (run && inProgress(run)) this.update(run, { status, cancelling: false });
  }

  private onFrame(f: SqlServerMessage): void {
    switch (f.type) {
      case 'ready':
        this.store.setState({
          phase: 'ready',
          info: { sessionId: f.sessionId, level: f.level, readOnly: f.readOnly, maxRows: f.maxRows },
        });
        return;
      case 'closed':
        this.endRun('closed');
        this.store.setState({ phase: 'closed', closed: { code: f.code, reason: f.reason } });
        return;
      case 'columns': {
        const run = this.current(f.id);
        if (!run) return;
        run.results.push({
          statementIndex: f.statementIndex,
          columns: f.columns,
          rows: [],
          masked: new Set(),
          done: null,
        });
        this.update(run, { results: [...run.results] });
        return;
      }
      case 'rows': {
        const run = this.current(f.id);
        const set = run?.results.findLast((r) => r.statementIndex === f.statementIndex);
        if (!run || !set) return;
        const base = set.rows.length;
        const width = set.columns.length;
        for (const row of f.rows) set.rows.push(row);
        for (const [r, c] of f.masked) set.masked.add((base + r) * width + c);
        this.bump();
        return;
      }
      case 'done': {
        const run = this.current(f.id);
        if (!run) return;
        const done: StatementDone = {
          statementIndex: f.statementIndex,
          command: f.command,
          rowCount: f.rowCount,
          truncated: f.truncated,
          durationMs: f.durationMs,
        };
        const set = run.results.findLast((r) => r.statementIndex === f.statementIndex);
        if (set) set.done = done;
        this.update(run, { statements: [...run.statements, done], results: [...run.results] });
        return;
      }
      case 'notice': {
        const { type: _t, id, ...notice } = f;
        const run = this.current(id);
        if (run) this.update(run, { notices: [...run.notices, notice] });
        return;
      }
      case 'complete': {
        const run = this.current(f.id);
        if (run) this.update(run, { status: 'complete', durationMs: f.durationMs, cancelling: false });
        return;
      }
      case 'error': {
        const { type: _t, id, ...error } = f;
        const run = this.current(id);
        if (run) {
          this.update(run, {
            status: 'error',
            error,
            durationMs: Date.now() - run.startedAt,
            cancelling: false,
          });
          return;
        }
        // An error that belongs to no run: the session was refused, or a frame was malformed.
        if (this.store.getState().phase === 'connecting') {
          this.store.setState({
            phase: 'closed',
            closed: { code: error.code ?? 'error', reason: error.message },
          });
        }
        return;
      }
      case 'blocked': {
        const { type: _t, id, ...blocked } = f;
        const run = this.current(id);
        if (run) {
          this.update(run, {
            status: 'blocked',
            blocked,
            durationMs: Date.now() - run.startedAt,
            cancelling: false,
          });
        }
        return;
      }
      case 'review': {
        const { type: _t, id, ...review } = f;
        const run = this.current(id);
        if (!run || !inProgress(run)) return;
        // Approved: the held batch runs now, its frames follow as for any run.
        if (review.status === 'approved') this.update(run, { status: 'running', review });
        else this.update(run, { status: 'review', review });
        return;
      }
      case 'cancelled': {
        const run = this.current(f.id);
        if (run)
          this.update(run, {
            status: 'cancelled',
            durationMs: Date.now() - run.startedAt,
            cancelling: false,
          });
        return;
      }
    }
  }

  private send(msg: SqlClientMessage): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** A run is executing or held for review: the gateway answers another `run` with `busy`. */
  get running(): boolean {
    return inProgress(this.store.getState().run);
  }

  /** Starts a run; false when the session is not ready or a run is in progress. */
  run(sql: string, offset = 0): boolean {
    const s = this.store.getState();
    if (s.phase !== 'ready' || this.running || sql.trim() === '') return false;
    const id = `r${Date.now().toString(36)}-${++runSeq}`;
    const run: SqlRun = {
      id,
      sql,
      offset,
      startedAt: Date.now(),
      status: 'running',
      results: [],
      statements: [],
      notices: [],
    };
    this.store.setState((st) => ({ run, version: st.version + 1 }));
    return this.send({ type: 'run', id, sql });
  }

  /** Cancels the current run; a run held for review withdraws the review. */
  cancel(): void {
    const run = this.store.getState().run;
    if (!run || !inProgress(run) || run.cancelling) return;
    this.update(run, { cancelling: true });
    this.send({ type: 'cancel', id: run.id });
  }

  close(): void {
    const ws = this.ws;
    this.ws = null;
    if (this.pendingBump) cancelAnimationFrame(this.pendingBump);
    if (this.store.getState().phase !== 'closed') {
      this.store.setState({
        phase: 'closed',
        closed: { code: 'client_closed', reason: 'You closed the session.' },
      });
    }
    if (!ws) return;
    // Closing a socket that is still connecting makes Chromium log an error: close it once open.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
    else if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  }
}
