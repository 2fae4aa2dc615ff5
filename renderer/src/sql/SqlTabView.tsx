import type { GrantView, ReviewView } from '@sallyport/protocol';
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { approvalNeeded } from '../access/format';
import { gateway } from '../api';
import { Countdown } from '../components/Countdown';
import { useAccess } from '../state/access';
import {
  type HistoryEntry,
  type HistoryOutcome,
  type SqlTab,
  selectEpochOf,
  type TabStatus,
  useTabs,
} from '../state/tabs';
import { useTargets } from '../state/targets';
import { GrantEnded } from '../tabs/GrantEnded';
import { checkGrant, GRANT_ENDED_CODES, timeLeft } from '../tabs/grants';
import {
  inProgress,
  type ResultSet,
  SqlConnection,
  type SqlConnectionState,
  type SqlRun,
} from './connection';
import { csvFilename, download, lineColOf, toCsv } from './csv';
import { ResultGrid } from './ResultGrid';
import { SqlEditor, type SqlEditorHandle } from './SqlEditor';

type Gate =
  | { state: 'checking' }
  | { state: 'ended'; reason: string; replacement?: GrantView; transient?: boolean }
  | { state: 'live'; conn: SqlConnection; grant: GrantView };

const EMPTY: SqlConnectionState = { phase: 'connecting', info: null, closed: null, run: null, version: 0 };
const noSubscription = () => () => {};

function useConnectionState(conn: SqlConnection | null): SqlConnectionState {
  const subscribe = useCallback(
    (cb: () => void) => (conn ? conn.store.subscribe(cb) : noSubscription()),
    [conn],
  );
  return useSyncExternalStore(subscribe, () => (conn ? conn.store.getState() : EMPTY));
}

const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);
const RUN_KEYS = isMac ? '⌘↵' : 'Ctrl+Enter';
const fmt = new Intl.NumberFormat('en-US');

function statusOf(s: SqlConnectionState): TabStatus {
  if (s.phase === 'connecting') return 'connecting';
  if (s.phase === 'closed')
    return s.closed && GRANT_ENDED_CODES.has(s.closed.code) ? 'grant-ended' : 'closed';
  return inProgress(s.run) ? 'running' : 'connected';
}

const OUTCOME: Record<SqlRun['status'], HistoryOutcome> = {
  running: 'ok',
  complete: 'ok',
  error: 'error',
  blocked: 'blocked',
  review: 'review',
  cancelled: 'cancelled',
  closed: 'cancelled',
};

const durationText = (ms: number | undefined) =>
  ms === undefined ? '' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;

/** The approver of a review decision: the `review` frame's, else the gateway's `… by <who>` text. */
const deciderOf = (run: SqlRun): string | undefined =>
  run.review?.decidedBy ?? /^(?:approved|denied) by ([^:\s]+)/.exec(run.blocked?.message ?? '')?.[1];

function RunStatus({ run, maxRows }: { run: SqlRun; maxRows: number | undefined }) {
  const received = run.results.reduce((n, r) => n + r.rows.length, 0);
  if (run.status === 'review') {
    return (
      <span className="run-status run-status-review" role="status" data-testid="run-status">
        <span className="spinner spinner-review" aria-hidden="true" />
        {run.cancelling ? 'Withdrawing the review…' : 'Waiting for approval · nothing ran yet'}
      </span>
    );
  }
  if (run.status === 'running') {
    const approved = run.review?.status === 'approved' ? `Approved by ${deciderOf(run)} · ` : '';
    return (
      <span className="run-status run-status-running" role="status">
        <span className="spinner" aria-hidden="true" />
        {run.cancelling
          ? 'Cancelling…'
          : `${approved}Running… ${received ? `${fmt.format(received)} rows received` : ''}`}
      </span>
    );
  }
  const reviewCode = run.blocked?.code;
  const last = run.statements.at(-1);
  return (
    <span className={`run-status run-status-${run.status}`} role="status" data-testid="run-status">
      {run.status === 'complete'
        ? `${run.statements.length === 1 ? '1 statement' : `${run.statements.length} statements`}${
            last
              ? ` · ${last.command}${last.rowCount !== null ? ` ${fmt.format(last.rowCount)} rows` : ''}`
              : ''
          } · ${durationText(run.durationMs)}`
        : run.status === 'cancelled'
          ? run.review
            ? 'Review withdrawn · nothing ran'
            : 'Cancelled'
          : run.status === 'closed'
            ? 'Interrupted: the session closed'
            : run.status === 'blocked'
              ? reviewCode === 'review_denied'
                ? `Denied by ${deciderOf(run) ?? 'an approver'} · nothing ran`
                : reviewCode === 'review_expired'
                  ? 'Review expired: nobody approved it in time · nothing ran'
                  : `Blocked by the gateway (rule ${run.blocked?.rule ?? '?'}) · nothing ran`
              : `Failed${run.error?.code ? ` with ${run.error.code}` : ''}${
                  run.statements.length ? ` after ${run.statements.length} completed statements` : ''
                } · ${durationText(run.durationMs)}`}
      {run.statements.some((s) => s.truncated) ? (
        <span className="run-truncated-inline"> · truncated at {fmt.format(maxRows ?? 0)} rows</span>
      ) : null}
    </span>
  );
}

type Blocked = NonNullable<SqlRun['blocked']>;
type Review = NonNullable<SqlRun['review']>;

/**
 * The requester's own copy of a review (`GET /api/reviews?scope=mine`): who may approve it, and
 * the decision with its reason. Fetched again when the run's phase changes.
 */
function useOwnReview(reviewId: string | undefined, phase: string): ReviewView | null {
  const [own, setOwn] = useState<ReviewView | null>(null);
  useEffect(() => {
    if (!reviewId) return;
    let gone = false;
    gateway.reviews({ scope: 'mine', ...(phase === 'review' ? { status: 'pending' } : {}) }).then(
      (list) => {
        const found = list.find((r) => r.id === reviewId);
        if (!gone && found) setOwn(found);
      },
      // Only the extra facts are missing then (approvers, structured reason): the frames suffice.
      () => {},
    );
    return () => {
      gone = true;
    };
  }, [reviewId, phase]);
  return own && own.id === reviewId ? own : null;
}

/** The batch as sent, when the approval covers more than the statement that needed review. */
function WholeBatch({ run, statement }: { run: SqlRun; statement: string }) {
  if (run.sql.trim() === statement.trim()) return null;
  return (
    <details className="sql-review-batch">
      <summary>The decision covers the whole run, exactly as sent</summary>
      <pre className="sql-msg-batch">{run.sql.trim()}</pre>
    </details>
  );
}

/** Held for an approver (pending), or approved and running / ran. */
function ReviewMessage({ run, review, own }: { run: SqlRun; review: Review; own: ReviewView | null }) {
  if (review.status === 'approved') {
    const reason = own?.decisionReason ?? /^approved by [^:]+: ([\s\S]+)$/.exec(review.message)?.[1];
    return (
      <div
        className="sql-msg sql-msg-approved"
        role="status"
        data-testid="sql-review"
        data-review-status="approved"
      >
        <div className="sql-msg-head">
          <strong data-testid="review-approved-by">Approved by {deciderOf(run) ?? 'an approver'}</strong>
          <span>
            rule <code className="rule">{review.rule}</code>
          </span>
          <span className="muted">ran once, exactly as it was held</span>
        </div>
        {reason ? <p className="sql-msg-text">“{reason}”</p> : null}
      </div>
    );
  }
  if (run.status === 'cancelled') {
    return (
      <div
        className="sql-msg sql-msg-closed"
        role="status"
        data-testid="sql-review"
        data-review-status="cancelled"
      >
        <div className="sql-msg-head">
          <strong>Review withdrawn</strong>
          <span>
            rule <code className="rule">{review.rule}</code>
          </span>
          <span className="muted">nothing in this run was executed</span>
        </div>
        <pre className="sql-msg-stmt">{review.statement}</pre>
      </div>
    );
  }
  if (run.status !== 'review') return null;
  const approvers = own ? approvalNeeded(own.approvers, 1) : null;
  const expiresAt = review.expiresAt ?? own?.expiresAt;
  return (
    <div
      className="sql-msg sql-msg-review"
      role="status"
      data-testid="sql-review"
      data-review-status="pending"
    >
      <div className="sql-msg-head">
        <span className="spinner spinner-review" aria-hidden="true" />
        <strong>Waiting for approval</strong>
        <span>
          rule <code className="rule">{review.rule}</code>
        </span>
        {expiresAt ? (
          <span className="sql-review-expiry" title={new Date(expiresAt).toLocaleString()}>
            expires in <Countdown until={expiresAt} warnMs={60_000} />
          </span>
        ) : null}
      </div>
      <p className="sql-msg-text">{review.message}</p>
      <pre className="sql-msg-stmt">{review.statement}</pre>
      <WholeBatch run={run} statement={review.statement} />
      <p className="sql-review-who">
        {approvers ? (
          <>
            Can approve: <strong data-testid="review-approvers">{approvers}</strong>.{' '}
          </>
        ) : null}
        Nothing has run. It runs once, unchanged, when approved; Cancel withdraws it.
      </p>
    </div>
  );
}

/** Refused: by a rule, or by a review that was denied or expired (the approver's reason apart). */
function BlockedMessage({ run, blocked, own }: { run: SqlRun; blocked: Blocked; own: ReviewView | null }) {
  const denied = blocked.code === 'review_denied';
  const expired = blocked.code === 'review_expired';
  const reason = denied
    ? (own?.decisionReason ?? /^denied by [^:]+: ([\s\S]+)$/.exec(blocked.message)?.[1])
    : undefined;
  return (
    <div
      className={`sql-msg sql-msg-blocked${denied ? ' sql-msg-denied' : ''}`}
      role="alert"
      data-testid="sql-blocked"
      data-code={blocked.code ?? 'rule'}
    >
      <div className="sql-msg-head">
        <strong>
          {denied
            ? `Denied by ${deciderOf(run) ?? 'an approver'}`
            : expired
              ? 'Review expired: nobody approved it in time'
              : 'Blocked by the gateway'}
        </strong>
        <span>
          rule <code className="rule">{blocked.rule}</code>
        </span>
        <span className="muted">
          statement {blocked.statementIndex + 1} · nothing in this run was executed
        </span>
      </div>
      {denied && reason ? (
        <blockquote className="sql-review-reason">
          <span className="sql-review-reason-label">Reason</span>
          <span data-testid="review-reason">{reason}</span>
        </blockquote>
      ) : (
        <p className="sql-msg-text">{blocked.message}</p>
      )}
      <pre className="sql-msg-stmt">{blocked.statement}</pre>
    </div>
  );
}

/** PostgreSQL's notices of the run (RAISE NOTICE, warnings), like psql prints them. */
function Notices({ run }: { run: SqlRun }) {
  const several = run.statements.length > 1 || run.results.length > 1;
  return (
    <div className="sql-msg sql-msg-notice" role="status" data-testid="sql-notices">
      <ul className="sql-notices">
        {run.notices.map((n, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: notices only ever append, in order
          <li key={i}>
            <strong className={`notice-severity notice-severity-${n.severity.toLowerCase()}`}>
              {n.severity}
            </strong>{' '}
            {several ? <span className="muted">statement {n.statementIndex + 1} · </span> : null}
            <span className="sql-msg-text">{n.message}</span>
            {n.detail ? <span className="sql-msg-more"> Detail: {n.detail}</span> : null}
            {n.hint ? <span className="sql-msg-more"> Hint: {n.hint}</span> : null}
          </li>
        ))}
      </ul>
    </div>
  );
}

function RunMessages({
  run,
  maxRows,
  own,
}: {
  run: SqlRun;
  maxRows: number | undefined;
  own: ReviewView | null;
}) {
  const truncated = run.results.filter((r) => r.done?.truncated);
  return (
    <>
      {run.error ? (
        <div className="sql-msg sql-msg-error" role="alert" data-testid="sql-error">
          <div className="sql-msg-head">
            <strong>Error</strong>
            {run.error.code ? <code className="sqlstate">SQLSTATE {run.error.code}</code> : null}
            {run.error.statementIndex !== undefined ? (
              <span className="muted">statement {run.error.statementIndex + 1}</span>
            ) : null}
            {run.error.position !== undefined ? (
              <span className="sql-msg-pos" data-testid="sql-error-position">
                {(() => {
                  const lc = lineColOf(run.sql, run.error.position);
                  return `at position ${run.error.position} (line ${lc.line}, column ${lc.column})`;
                })()}
              </span>
            ) : null}
          </div>
          <p className="sql-msg-text">{run.error.message}</p>
          {run.error.detail ? <p className="sql-msg-more">Detail: {run.error.detail}</p> : null}
          {run.error.hint ? <p className="sql-msg-more">Hint: {run.error.hint}</p> : null}
        </div>
      ) : null}
      {run.notices.length > 0 ? <Notices run={run} /> : null}
      {run.blocked ? <BlockedMessage run={run} blocked={run.blocked} own={own} /> : null}
      {run.review ? <ReviewMessage run={run} review={run.review} own={own} /> : null}
      {truncated.length > 0 ? (
        <div className="sql-msg sql-msg-truncated" role="status" data-testid="sql-truncated">
          <strong>Result truncated.</strong> The gateway sends at most {fmt.format(maxRows ?? 0)} rows per
          statement; showing the first {fmt.format(truncated[0]!.rows.length)}. Narrow the query (WHERE,
          LIMIT) to see the rest.
        </div>
      ) : null}
    </>
  );
}

function HistoryMenu({
  history,
  onPick,
  onClear,
  onClose,
}: {
  history: HistoryEntry[];
  onPick(sql: string): void;
  onClear(): void;
  onClose(): void;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const onDown = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) onClose();
    };
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [onClose]);
  return (
    <div className="popover history" ref={ref} role="dialog" aria-label="Statement history">
      <div className="popover-head">
        <strong>History</strong>
        <span className="muted">{history.length} in this tab</span>
        {history.length ? (
          <button type="button" className="button button-link" onClick={onClear}>
            Clear
          </button>
        ) : null}
      </div>
      {history.length === 0 ? (
        <p className="popover-empty muted">Statements you run in this tab appear here.</p>
      ) : (
        <ul className="history-list">
          {history.map((h) => (
            <li key={`${h.at}-${h.sql.slice(0, 40)}`}>
              <button type="button" onClick={() => onPick(h.sql)} title={h.sql}>
                <span className={`outcome outcome-${h.outcome}`}>{h.outcome}</span>
                <span className="history-sql mono">{h.sql}</span>
                <span className="history-meta muted">
                  {h.rows !== undefined ? `${fmt.format(h.rows)} rows · ` : ''}
                  {new Date(h.at).toLocaleTimeString()}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function pickResult(results: ResultSet[], chosen: number | null): number {
  if (results.length === 0) return -1;
  if (chosen !== null && chosen < results.length) return chosen;
  return results.length - 1;
}

export default function SqlTabView({ tab, active }: { tab: SqlTab; active: boolean }) {
  const epoch = useTabs(selectEpochOf(tab.id));
  const target = useTargets((s) => s.targets.find((t) => t.id === tab.targetId));
  const setStatus = useTabs((s) => s.setStatus);
  const [gate, setGate] = useState<Gate>({ state: 'checking' });
  const [chosen, setChosen] = useState<number | null>(null);
  const [historyOpen, setHistoryOpen] = useState(false);
  const editor = useRef<SqlEditorHandle>(null);
  const conn = useRef<SqlConnection | null>(null);
  const live = gate.state === 'live' ? gate.conn : null;
  const state = useConnectionState(live);
  const run = state.run;

  // Drafts are saved a moment after typing stops.
  const draftTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const onChange = useCallback(
    (text: string) => {
      clearTimeout(draftTimer.current);
      draftTimer.current = setTimeout(() => useTabs.getState().setDraft(tab.id, text), 300);
    },
    [tab.id],
  );
  useEffect(() => () => clearTimeout(draftTimer.current), []);

  const onRunEnd = useCallback(
    (r: SqlRun) => {
      const rows = r.statements.findLast((s) => s.rowCount !== null)?.rowCount ?? undefined;
      useTabs.getState().addHistory(tab.id, {
        sql: r.sql.trim(),
        at: new Date(r.startedAt).toISOString(),
        outcome: OUTCOME[r.status],
        ...(rows !== undefined && rows !== null ? { rows } : {}),
      });
      const ed = editor.current;
      if (!ed) return;
      const lead = r.sql.length - r.sql.trimStart().length;
      if (r.error) {
        const text = `${r.error.code ? `${r.error.code}: ` : ''}${r.error.message}`;
        if (r.error.position !== undefined) ed.markError(r.offset + r.error.position - 1, null, text);
        else ed.markError(r.offset + lead, r.sql.trim().length, text);
      } else if (r.blocked) {
        const at = r.sql.indexOf(r.blocked.statement);
        ed.markError(
          r.offset + (at >= 0 ? at : lead),
          at >= 0 ? r.blocked.statement.length : r.sql.trim().length,
          r.blocked.code?.startsWith('review_')
            ? `Not run (rule ${r.blocked.rule}): ${r.blocked.message}`
            : `Blocked by rule ${r.blocked.rule}: ${r.blocked.message}`,
        );
      }
    },
    [tab.id],
  );

  // Check the grant, then open the session; again on "Reconnect" or a new grant for this tab.
  // biome-ignore lint/correctness/useExhaustiveDependencies: epoch is the reconnect trigger
  useEffect(() => {
    let cancelled = false;
    let unsubscribe: (() => void) | undefined;
    setGate({ state: 'checking' });
    setStatus(tab.id, 'checking');
    void checkGrant(tab.grantId, tab.targetId, 'sql').then((res) => {
      if (cancelled) return;
      if (!res.ok) {
        setGate({
          state: 'ended',
          reason: res.reason,
          ...(res.replacement ? { replacement: res.replacement } : {}),
          ...(res.transient ? { transient: true } : {}),
        });
        setStatus(tab.id, 'grant-ended');
        return;
      }
      const c = new SqlConnection({ targetId: tab.targetId, grantId: tab.grantId, onRunEnd });
      conn.current = c;
      unsubscribe = c.store.subscribe((s) => setStatus(tab.id, statusOf(s)));
      c.connect();
      setGate({ state: 'live', conn: c, grant: res.grant });
    });
    return () => {
      cancelled = true;
      unsubscribe?.();
      conn.current?.close();
      conn.current = null;
    };
  }, [tab.grantId, tab.targetId, tab.id, epoch, setStatus, onRunEnd]);

  useEffect(() => {
    if (!active) return;
    const raf = requestAnimationFrame(() => editor.current?.focus());
    return () => cancelAnimationFrame(raf);
  }, [active]);

  const runNow = useCallback(() => {
    const c = conn.current;
    const ed = editor.current;
    if (!c || !ed) return;
    const { sql, offset } = ed.runText();
    if (!sql.trim()) return;
    ed.clearMarkers();
    setChosen(null);
    c.run(sql, offset);
  }, []);

  const ready = state.phase === 'ready';
  const running = inProgress(run);
  const ownReview = useOwnReview(run?.review?.reviewId, run?.status ?? '');
  const resultIndex = run ? pickResult(run.results, chosen) : -1;
  const result = run && resultIndex >= 0 ? run.results[resultIndex] : undefined;
  const closed = state.closed;

  const exportCsv = () => {
    if (!result) return;
    download(csvFilename(tab.targetId), toCsv(result.columns, result.rows), 'text/csv;charset=utf-8');
  };

  const reconnect = () => useTabs.getState().reconnect(tab.id);
  const switchGrant = (g: GrantView) =>
    useTabs
      .getState()
      .open({ kind: 'sql', targetId: tab.targetId, title: tab.title, grantId: g.id, level: g.level });

  return (
    <section
      className="session session-sql"
      aria-label={`SQL session on ${tab.title}`}
      data-tab-kind="sql"
      onKeyDown={(e) => {
        // Ctrl/Cmd-Enter also runs when the focus is in the results.
        if ((isMac ? e.metaKey : e.ctrlKey) && e.key === 'Enter') {
          e.preventDefault();
          runNow();
        }
      }}
    >
      <header className="session-bar">
        <div className="session-title">
          <span
            className={`conn-dot conn-${gate.state === 'live' ? state.phase : gate.state}`}
            aria-hidden="true"
          />
          <strong>{tab.title}</strong>
          <span className="mono muted">
            {target?.database
              ? `${target.user}@${target.host}:${target.port}/${target.database}`
              : tab.targetId}
          </span>
          {gate.state === 'live' ? (
            <span className="session-meta">
              {state.info?.level ?? tab.level ?? gate.grant.level}
              {state.info?.readOnly ? ' · read-only' : ''} · {timeLeft(gate.grant.expiresAt)}
            </span>
          ) : null}
        </div>
        <div className="session-actions">
          <div className="popover-anchor">
            <button
              type="button"
              className="button button-ghost button-small"
              aria-expanded={historyOpen}
              onClick={() => setHistoryOpen((v) => !v)}
            >
              History{tab.history.length ? ` (${tab.history.length})` : ''}
            </button>
            {historyOpen ? (
              <HistoryMenu
                history={tab.history}
                onPick={(sql) => {
                  editor.current?.setText(sql);
                  setHistoryOpen(false);
                }}
                onClear={() => useTabs.getState().clearHistory(tab.id)}
                onClose={() => setHistoryOpen(false)}
              />
            ) : null}
          </div>
          <button
            type="button"
            className="button button-ghost button-small"
            disabled={!result || running}
            onClick={exportCsv}
            title="Download the result shown, as shown (masked values stay masked)"
          >
            Export CSV
          </button>
          {running ? (
            <button
              type="button"
              className="button button-danger button-small"
              onClick={() => live?.cancel()}
              disabled={run?.cancelling}
              title={
                run?.status === 'review' ? 'Withdraw the review: nothing of this run executes' : undefined
              }
            >
              Cancel
            </button>
          ) : null}
          <button
            type="button"
            className="button button-primary button-small"
            disabled={!ready || running}
            onClick={runNow}
            title={`Run the selection, or everything (${RUN_KEYS})`}
          >
            ▶ Run <kbd>{RUN_KEYS}</kbd>
          </button>
        </div>
      </header>
      <div className="sql-editor-wrap">
        <SqlEditor
          ref={editor}
          initial={tab.draft}
          onChange={onChange}
          onRun={runNow}
          label={`SQL editor for ${tab.title}`}
        />
      </div>
      <div className="sql-output" data-run-id={run?.id} data-run-status={run?.status}>
        {gate.state === 'ended' ? (
          <GrantEnded
            reason={gate.reason}
            replacement={gate.replacement}
            transient={gate.transient}
            onUse={switchGrant}
            onRequest={target ? () => useAccess.getState().openRequest(target) : undefined}
            onRetry={reconnect}
            onClose={() => useTabs.getState().close(tab.id)}
          />
        ) : null}
        {gate.state === 'checking' || (gate.state === 'live' && state.phase === 'connecting') ? (
          <p className="sql-placeholder muted">
            {gate.state === 'checking' ? 'Checking the grant…' : 'Opening the session through the gateway…'}
          </p>
        ) : null}
        {gate.state === 'live' && closed ? (
          <div
            className={`sql-msg ${GRANT_ENDED_CODES.has(closed.code) ? 'sql-msg-error' : 'sql-msg-closed'}`}
            role="status"
            data-testid="session-closed"
            data-code={closed.code}
          >
            <div className="sql-msg-head">
              <strong>Session closed</strong>
              <code className="mono">{closed.code}</code>
              <button type="button" className="button button-primary button-small" onClick={reconnect}>
                Reconnect
              </button>
            </div>
            <p className="sql-msg-text">{closed.reason}</p>
          </div>
        ) : null}
        {run ? (
          <>
            <div className="run-bar">
              <RunStatus run={run} maxRows={state.info?.maxRows} />
              {run.results.length > 1 ? (
                <div className="result-tabs" role="tablist" aria-label="Result sets">
                  {run.results.map((r, i) => (
                    <button
                      key={r.statementIndex}
                      type="button"
                      role="tab"
                      aria-selected={i === resultIndex}
                      className={`result-tab${i === resultIndex ? ' result-tab-active' : ''}`}
                      onClick={() => setChosen(i)}
                    >
                      Result {i + 1}
                      <span className="muted"> · {fmt.format(r.rows.length)}</span>
                    </button>
                  ))}
                </div>
              ) : null}
              {result ? (
                <span className="run-bar-right muted">
                  {fmt.format(result.rows.length)} rows · {result.columns.length} columns
                  {result.masked.size ? (
                    <span className="masked-count" data-testid="masked-count">
                      {' '}
                      · {fmt.format(result.masked.size)} masked
                    </span>
                  ) : null}
                </span>
              ) : null}
            </div>
            <RunMessages run={run} maxRows={state.info?.maxRows} own={ownReview} />
            {result ? (
              <ResultGrid
                columns={result.columns}
                rows={result.rows}
                masked={result.masked}
                version={state.version}
                label={`Result of ${run.sql.trim().slice(0, 60)}`}
              />
            ) : run.status === 'complete' && run.statements.length > 0 ? (
              <ul className="statement-list">
                {run.statements.map((s) => (
                  <li key={s.statementIndex}>
                    <code>{s.command}</code>
                    {s.rowCount !== null ? ` ${fmt.format(s.rowCount)} rows` : ''}
                    <span className="muted"> · {durationText(s.durationMs)}</span>
                  </li>
                ))}
              </ul>
            ) : null}
          </>
        ) : gate.state === 'live' && state.phase === 'ready' ? (
          <div className="sql-placeholder">
            <p>
              Write SQL above and press <kbd>{RUN_KEYS}</kbd> to run it — the selection if there is one,
              otherwise everything.
            </p>
            <p className="muted">
              Every statement is checked by the gateway’s guardrails before it runs; sensitive values are
              masked before they leave the gateway
              {state.info ? ` (at most ${fmt.format(state.info.maxRows)} rows per statement)` : ''}.
            </p>
          </div>
        ) : null}
      </div>
    </section>
  );
}
