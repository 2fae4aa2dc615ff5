import type { RequestView, ReviewView } from '@sallyport/protocol';
import { type ReactNode, useEffect } from 'react';
import {
  approvalNeeded,
  formatDuration,
  formatTimestamp,
  LEVEL_RISK,
  LEVEL_TEXT,
  timeAgo,
} from '../access/format';
import { denyReasonProblem, reviewDenyReasonProblem, reviewNoteProblem } from '../access/validate';
import { isProdTarget, LevelBadge, TargetTitle, useTarget } from '../components/access-bits';
import { AlertIcon, CheckIcon, InboxIcon, ShieldAlertIcon } from '../components/access-icons';
import { Countdown } from '../components/Countdown';
import { useNow } from '../components/clock';
import { selectLiveStatus, useEvents } from '../state/events';
import {
  approvedByMe,
  type BreakGlassAlert,
  selectAlerts,
  selectDecision,
  selectInboxError,
  selectInboxRequests,
  selectInboxReviews,
  selectInboxStatus,
  selectSelected,
  selectSelectedAlert,
  selectSelectedRequest,
  selectSelectedReview,
  useInbox,
} from '../state/inbox';
import { initialsOf, selectMe, useSession } from '../state/session';
import { useTargets } from '../state/targets';

function RiskFlags({
  targetId,
  level,
  breakGlass,
}: {
  targetId: string;
  level: RequestView['level'];
  breakGlass?: boolean;
}) {
  const target = useTarget(targetId);
  const risk = LEVEL_RISK[level];
  return (
    <span className="risk">
      {breakGlass ? <span className="flag flag-danger">break-glass</span> : null}
      {isProdTarget(target) ? <span className="flag flag-prod">production</span> : null}
      {risk !== 'low' ? <span className={`flag flag-${risk}`}>{LEVEL_TEXT[level].toLowerCase()}</span> : null}
    </span>
  );
}

// ---- the list ----

function RequestItem({ r, selected, now }: { r: RequestView; selected: boolean; now: number }) {
  const target = useTarget(r.targetId);
  const select = useInbox((s) => s.select);
  return (
    <li>
      <button
        type="button"
        className={`inbox-item${selected ? ' inbox-item-selected' : ''}`}
        aria-current={selected ? 'true' : undefined}
        data-request-id={r.id}
        onClick={() => select({ kind: 'request', id: r.id })}
      >
        <span className="avatar avatar-sm" aria-hidden="true">
          {initialsOf(r.requester)}
        </span>
        <span className="inbox-item-main">
          <span className="inbox-item-top">
            <strong>{r.requester}</strong>
            <span className="muted">{timeAgo(r.createdAt, now)}</span>
          </span>
          <span className="inbox-item-what">
            <LevelBadge level={r.level} /> on {target?.name ?? r.targetId} ·{' '}
            {formatDuration(r.durationSeconds)}
          </span>
          <span className="inbox-item-why">{r.reason}</span>
          <RiskFlags targetId={r.targetId} level={r.level} breakGlass={r.breakGlass} />
        </span>
      </button>
    </li>
  );
}

function ReviewItem({ r, selected, now }: { r: ReviewView; selected: boolean; now: number }) {
  const target = useTarget(r.targetId);
  const select = useInbox((s) => s.select);
  return (
    <li>
      <button
        type="button"
        className={`inbox-item${selected ? ' inbox-item-selected' : ''}`}
        aria-current={selected ? 'true' : undefined}
        data-review-id={r.id}
        onClick={() => select({ kind: 'review', id: r.id })}
      >
        <span className="avatar avatar-sm" aria-hidden="true">
          {initialsOf(r.requester)}
        </span>
        <span className="inbox-item-main">
          <span className="inbox-item-top">
            <strong>{r.requester}</strong>
            <span className="muted">{timeAgo(r.createdAt, now)}</span>
          </span>
          <span className="inbox-item-what">
            {r.kind === 'sql' ? 'Statement' : 'Command'} on {target?.name ?? r.targetId}
          </span>
          <code className="inbox-item-code">{r.text}</code>
        </span>
      </button>
    </li>
  );
}

function AlertItem({ a, selected }: { a: BreakGlassAlert; selected: boolean }) {
  const target = useTarget(a.request.targetId);
  const select = useInbox((s) => s.select);
  return (
    <li>
      <button
        type="button"
        className={`inbox-item inbox-item-alert${selected ? ' inbox-item-selected' : ''}`}
        aria-current={selected ? 'true' : undefined}
        onClick={() => select({ kind: 'alert', id: a.id })}
      >
        <span className="avatar avatar-sm avatar-danger" aria-hidden="true">
          <ShieldAlertIcon />
        </span>
        <span className="inbox-item-main">
          <span className="inbox-item-top">
            <strong>Break-glass · {a.request.requester}</strong>
          </span>
          <span className="inbox-item-what">
            <LevelBadge level={a.request.level} /> on {target?.name ?? a.request.targetId}
          </span>
          <span className="inbox-item-why">{a.request.reason}</span>
        </span>
      </button>
    </li>
  );
}

function ListGroup({ title, count, children }: { title: string; count: number; children: ReactNode }) {
  if (count === 0) return null;
  return (
    <div className="inbox-group">
      <h3>
        {title} <span className="count">{count}</span>
      </h3>
      <ul className="inbox-items">{children}</ul>
    </div>
  );
}

// ---- the detail pane ----

/** The text a decision needs (a deny reason, a review note), with its hint or what is wrong with it. */
function DecisionText(p: {
  id: string;
  label: string;
  placeholder: string;
  value: string;
  problem: string | null;
  hint: string;
  hintTestId: string;
  autoFocus?: boolean;
  onChange(value: string): void;
}) {
  return (
    <div className="form-field">
      <label htmlFor={p.id}>{p.label}</label>
      <textarea
        id={p.id}
        rows={2}
        value={p.value}
        // biome-ignore lint/a11y/noAutofocus: only where the field appears because the user asked for it
        autoFocus={p.autoFocus}
        placeholder={p.placeholder}
        aria-invalid={p.problem ? true : undefined}
        aria-describedby={`${p.id}-hint`}
        onChange={(e) => p.onChange(e.target.value)}
      />
      <p id={`${p.id}-hint`} className={p.problem ? 'field-error' : 'field-hint'} data-testid={p.hintTestId}>
        {p.problem ?? p.hint}
      </p>
    </div>
  );
}

function DecisionBar({
  kind,
  own,
  approvedAlready,
}: {
  kind: 'request' | 'review';
  own: boolean;
  approvedAlready: boolean;
}) {
  const d = useInbox(selectDecision);
  const { approve, deny, startDeny, cancelDeny, setDenyReason } = useInbox.getState();
  if (own) {
    return (
      <p className="notice notice-info" data-testid="own-request">
        This is your own {kind}. Someone else has to decide it.
      </p>
    );
  }
  if (approvedAlready) {
    return (
      <p className="notice notice-info">
        <CheckIcon /> You approved this. It waits for more approvals.
      </p>
    );
  }
  const problem = d.showValidation
    ? kind === 'request'
      ? denyReasonProblem(d.reason)
      : reviewDenyReasonProblem(d.reason)
    : null;
  return (
    <div className="decision-bar">
      {d.error ? (
        <div className="notice notice-error" role="alert" data-testid="decision-error">
          {d.error}
        </div>
      ) : null}
      {d.mode === 'deny' ? (
        <form
          className="form deny-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void deny();
          }}
        >
          <DecisionText
            id="deny-reason"
            label="Why deny it?"
            // The field appears because the user asked to deny.
            autoFocus
            placeholder="The requester reads this"
            value={d.reason}
            problem={problem}
            hint="Required. Sent to the requester and kept in the audit ledger."
            hintTestId="deny-hint"
            onChange={setDenyReason}
          />
          <div className="button-row">
            <button type="submit" className="button button-danger" disabled={d.busy !== null}>
              {d.busy === 'deny' ? 'Denying…' : `Deny ${kind}`}
            </button>
            <button type="button" className="button button-ghost" onClick={cancelDeny}>
              Back
            </button>
          </div>
        </form>
      ) : (
        <div className="button-row">
          <button
            type="button"
            className="button button-approve"
            disabled={d.busy !== null}
            onClick={() => void approve()}
          >
            <CheckIcon />
            {d.busy === 'approve' ? 'Approving…' : 'Approve'}
          </button>
          <button
            type="button"
            className="button button-danger-ghost"
            disabled={d.busy !== null}
            onClick={startDeny}
          >
            Deny…
          </button>
        </div>
      )}
    </div>
  );
}

function RequestDetail({ r }: { r: RequestView }) {
  const me = useSession(selectMe);
  const now = useNow();
  const got = r.approvals.filter((a) => a.decision === 'approve');
  return (
    <article className="detail" data-testid="inbox-detail" data-request-id={r.id}>
      <header className="detail-head">
        <p className="detail-kicker">Access request</p>
        <h2>
          <span>{r.requester}</span> asks for <LevelBadge level={r.level} /> access
        </h2>
        <RiskFlags targetId={r.targetId} level={r.level} breakGlass={r.breakGlass} />
      </header>
      <dl className="facts">
        <div className="facts-wide">
          <dt>Target</dt>
          <dd>
            <TargetTitle id={r.targetId} showLabels />
          </dd>
        </div>
        <div>
          <dt>Level</dt>
          <dd>{LEVEL_TEXT[r.level]}</dd>
        </div>
        <div>
          <dt>For how long</dt>
          <dd>{formatDuration(r.durationSeconds)}</dd>
        </div>
        <div className="facts-wide">
          <dt>Why</dt>
          <dd className="prose reason" data-testid="request-reason">
            {r.reason}
          </dd>
        </div>
        <div>
          <dt>Ticket</dt>
          <dd className={r.ticket ? 'mono' : 'muted'}>{r.ticket ?? 'none given'}</dd>
        </div>
        <div>
          <dt>Rule</dt>
          <dd className="mono">{r.rule}</dd>
        </div>
        <div>
          <dt>Approvals</dt>
          <dd>
            {got.length} of {r.approvalsRequired}
            {got.length > 0 ? ` (${got.map((a) => a.approver).join(', ')})` : ''}
            <div className="target-sub">from {approvalNeeded(r.approvers, r.approvalsRequired)}</div>
          </dd>
        </div>
        <div>
          <dt>Requested</dt>
          <dd>
            {timeAgo(r.createdAt, now)}
            <div className="target-sub">
              expires in <Countdown until={r.expiresAt} warnMs={0} />
            </div>
          </dd>
        </div>
      </dl>
      <DecisionBar
        kind="request"
        own={r.requester === me?.username}
        approvedAlready={approvedByMe(r, me?.username)}
      />
    </article>
  );
}

const DETAIL_LABELS: Record<string, string> = {
  statements: 'Statements in the batch',
  kinds: 'Statement kinds',
  statementKinds: 'Statement kinds',
  relations: 'Tables',
  tables: 'Tables',
  commands: 'Commands',
  estimate: 'Estimated rows',
  rows: 'Estimated rows',
  explain: 'Estimated rows (planner)',
};

/** Details the pane shows elsewhere (rule, message) or that only locate the statement for the gateway. */
const HIDDEN_DETAILS = new Set(['rule', 'message', 'statementIndex']);

/** One EXPLAIN estimate of a held SQL batch (`{statementIndex, kind, planRows | error}`). */
function explainText(e: unknown): string {
  if (!e || typeof e !== 'object') return String(e);
  const { statementIndex, kind, planRows, error } = e as Record<string, unknown>;
  const which = `${typeof statementIndex === 'number' ? `statement ${statementIndex + 1}` : 'statement'}${
    typeof kind === 'string' ? ` (${kind})` : ''
  }`;
  return typeof planRows === 'number'
    ? `≈${planRows.toLocaleString('en-US')} rows · ${which}`
    : `${which}: ${typeof error === 'string' ? error : 'no estimate'}`;
}

function detailValue(key: string, v: unknown): string {
  if (key === 'explain' && Array.isArray(v)) return v.map(explainText).join('; ') || 'none';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ');
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function ReviewDetail({ r }: { r: ReviewView }) {
  const me = useSession(selectMe);
  const now = useNow();
  const details = Object.entries(r.details).filter(([k]) => !HIDDEN_DETAILS.has(k));
  return (
    <article className="detail" data-testid="inbox-detail" data-review-id={r.id}>
      <header className="detail-head">
        <p className="detail-kicker">{r.kind === 'sql' ? 'Held statement' : 'Held command'}</p>
        <h2>
          <span>{r.requester}</span> wants to run this on <TargetTitle id={r.targetId} />
        </h2>
      </header>
      <pre className="code" data-testid="review-text">
        {r.text}
      </pre>
      <p className="notice notice-warn">
        <AlertIcon /> <span>{r.message}</span>
      </p>
      <dl className="facts">
        {details.map(([k, v]) => (
          <div key={k}>
            <dt>{DETAIL_LABELS[k] ?? k}</dt>
            <dd className="mono" data-detail={k}>
              {detailValue(k, v)}
            </dd>
          </div>
        ))}
        <div>
          <dt>Rule</dt>
          <dd className="mono">{r.rule}</dd>
        </div>
        <div>
          <dt>Held</dt>
          <dd>
            {timeAgo(r.createdAt, now)}
            <div className="target-sub">
              expires in <Countdown until={r.expiresAt} warnMs={0} />
            </div>
          </dd>
        </div>
        <div className="facts-wide">
          <dt>SHA-256</dt>
          <dd className="mono small" title="Approval binds to exactly this text">
            {r.sha256}
          </dd>
        </div>
      </dl>
      <DecisionBar kind="review" own={r.requester === me?.username} approvedAlready={false} />
    </article>
  );
}

function AlertDetail({ a }: { a: BreakGlassAlert }) {
  const r = a.request;
  return (
    <article className="detail" data-testid="inbox-detail">
      <header className="detail-head">
        <p className="detail-kicker detail-kicker-danger">Break-glass access taken</p>
        <h2>
          <span>{r.requester}</span> took <LevelBadge level={r.level} /> access without approval
        </h2>
        <RiskFlags targetId={r.targetId} level={r.level} breakGlass />
      </header>
      <dl className="facts">
        <div className="facts-wide">
          <dt>Target</dt>
          <dd>
            <TargetTitle id={r.targetId} showLabels />
          </dd>
        </div>
        <div>
          <dt>For how long</dt>
          <dd>{formatDuration(r.durationSeconds)}</dd>
        </div>
        <div>
          <dt>Ends in</dt>
          <dd>
            <Countdown until={a.grant.expiresAt} />
          </dd>
        </div>
        <div className="facts-wide">
          <dt>Why</dt>
          <dd className="prose reason">{r.reason}</dd>
        </div>
        <div>
          <dt>Ticket</dt>
          <dd className={r.ticket ? 'mono' : 'muted'}>{r.ticket ?? 'none given'}</dd>
        </div>
        <div>
          <dt>Granted</dt>
          <dd>{formatTimestamp(a.grant.createdAt)}</dd>
        </div>
      </dl>
      <p className="muted">
        Its sessions are recorded like any other (Recordings). Look at what was done, then say what you found:
        the review goes in the audit ledger and the holder is told.
      </p>
      <ReviewAlertForm />
    </article>
  );
}

/** The after-the-fact review of a break-glass grant: what the reviewer found, then done. */
function ReviewAlertForm() {
  const d = useInbox(selectDecision);
  const { reviewAlert, setDenyReason: setNote } = useInbox.getState();
  const problem = d.showValidation ? reviewNoteProblem(d.reason) : null;
  return (
    <form
      className="form decision-bar"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void reviewAlert();
      }}
    >
      {d.error ? (
        <div className="notice notice-error" role="alert" data-testid="decision-error">
          {d.error}
        </div>
      ) : null}
      <DecisionText
        id="review-note"
        label="What did you find?"
        placeholder="For example: read the recording, two SELECTs on orders, justified by the incident"
        value={d.reason}
        problem={problem}
        hint="Required. Kept in the audit ledger; the holder and the other approvers are told."
        hintTestId="review-note-hint"
        onChange={setNote}
      />
      <div className="button-row">
        <button type="submit" className="button button-primary" disabled={d.busy !== null}>
          {d.busy === 'review' ? 'Saving…' : 'Mark reviewed'}
        </button>
      </div>
    </form>
  );
}

function Detail() {
  const request = useInbox(selectSelectedRequest);
  const review = useInbox(selectSelectedReview);
  const alert = useInbox(selectSelectedAlert);
  if (request) return <RequestDetail r={request} />;
  if (review) return <ReviewDetail r={review} />;
  if (alert) return <AlertDetail a={alert} />;
  return (
    <div className="detail-empty muted">
      <InboxIcon />
      <span>Select an item to see who asks for what, and why.</span>
    </div>
  );
}

export function InboxView() {
  const status = useInbox(selectInboxStatus);
  const error = useInbox(selectInboxError);
  const requests = useInbox(selectInboxRequests);
  const reviews = useInbox(selectInboxReviews);
  const alerts = useInbox(selectAlerts);
  const selected = useInbox(selectSelected);
  const live = useEvents(selectLiveStatus);
  const now = useNow();

  useEffect(() => {
    if (useInbox.getState().status === 'idle') void useInbox.getState().load();
    if (useTargets.getState().status === 'idle') void useTargets.getState().load();
  }, []);

  const total = requests.length + reviews.length + alerts.length;
  const isSel = (kind: string, id: string) => selected?.kind === kind && selected.id === id;

  return (
    <div className="inbox" data-testid="inbox">
      <section className="panel inbox-list" aria-label="Waiting for you">
        <header className="section-head">
          <h2>Waiting for you</h2>
          <span className={`live live-${live}`} title="Updates arrive as they happen">
            <span className="live-dot" aria-hidden="true" />
            {live === 'live' ? 'Live' : live === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'}
          </span>
        </header>
        {status === 'error' ? (
          <div className="notice notice-error" role="alert">
            Could not load the inbox: {error}
          </div>
        ) : null}
        {total === 0 ? (
          <div className="section-empty muted" data-testid="inbox-empty">
            {status === 'loading'
              ? 'Loading…'
              : 'Nothing waits for you. New requests appear here as they arrive.'}
          </div>
        ) : (
          <>
            <ListGroup title="Break-glass" count={alerts.length}>
              {alerts.map((a) => (
                <AlertItem key={a.id} a={a} selected={isSel('alert', a.id)} />
              ))}
            </ListGroup>
            <ListGroup title="Access requests" count={requests.length}>
              {requests.map((r) => (
                <RequestItem key={r.id} r={r} selected={isSel('request', r.id)} now={now} />
              ))}
            </ListGroup>
            <ListGroup title="Held statements and commands" count={reviews.length}>
              {reviews.map((r) => (
                <ReviewItem key={r.id} r={r} selected={isSel('review', r.id)} now={now} />
              ))}
            </ListGroup>
          </>
        )}
      </section>
      <section className="panel inbox-detail" aria-label="Details">
        <Detail />
      </section>
    </div>
  );
}
