import type { GrantView, RequestView } from '@sallyport/protocol';
import { type ReactNode, useEffect } from 'react';
import { LevelBadge, StatusPill, TargetTitle, useTarget } from '../components/access-bits';
import { KeyIcon, PlugIcon } from '../components/access-icons';
import { Countdown } from '../components/Countdown';
import { useNow } from '../components/clock';
import { Modal } from '../components/Modal';
import {
  openTargetTab,
  selectAccessError,
  selectAccessStatus,
  selectActiveGrants,
  selectCancelling,
  selectEndedGrants,
  selectPastRequests,
  selectPendingRequests,
  selectRevoke,
  targetName,
  useAccess,
} from '../state/access';
import { useTargets } from '../state/targets';
import { approvalNeeded, formatDuration, formatTimestamp, LEVEL_TEXT, timeAgo } from './format';
import { revokeReasonProblem } from './validate';

function GrantRow({ g }: { g: GrantView }) {
  const target = useTarget(g.targetId);
  const { extendGrant, startRevoke } = useAccess.getState();
  return (
    <tr data-grant-id={g.id} data-target-id={g.targetId}>
      <td>
        <TargetTitle id={g.targetId} />
      </td>
      <td className="cell-tight">
        <LevelBadge level={g.level} />
      </td>
      <td className="cell-tight">
        <Countdown until={g.expiresAt} />
        <div className="target-sub">until {formatTimestamp(g.expiresAt).slice(11)}</div>
      </td>
      <td>
        {g.reviewRequired ? (
          g.reviewedBy ? (
            <span className="flag" title={g.reviewNote ?? undefined} data-testid="grant-reviewed">
              break-glass · reviewed by {g.reviewedBy}
            </span>
          ) : (
            <span className="flag flag-danger">break-glass · review required</span>
          )
        ) : null}
        <span className="target-sub">granted {formatTimestamp(g.createdAt)}</span>
      </td>
      <td className="cell-actions">
        <button
          type="button"
          className="button button-ghost button-small"
          disabled={!target}
          onClick={() => target && openTargetTab(target, g)}
        >
          <PlugIcon />
          Open
        </button>
        <button
          type="button"
          className="button button-ghost button-small"
          onClick={() => void extendGrant(g)}
        >
          Extend
        </button>
        <button
          type="button"
          className="button button-danger-ghost button-small"
          onClick={() => startRevoke(g)}
        >
          Revoke
        </button>
      </td>
    </tr>
  );
}

function PendingRow({ r }: { r: RequestView }) {
  const cancelling = useAccess(selectCancelling).includes(r.id);
  const target = useTarget(r.targetId);
  const { cancelRequest, showPending } = useAccess.getState();
  return (
    <tr data-request-id={r.id}>
      <td>
        <TargetTitle id={r.targetId} />
      </td>
      <td className="cell-tight">
        <LevelBadge level={r.level} />
        <div className="target-sub">{formatDuration(r.durationSeconds)}</div>
      </td>
      <td>
        <div className="clamp prose">{r.reason}</div>
        <div className="target-sub">
          {r.extendsGrantId ? 'extension · ' : ''}waiting for{' '}
          {approvalNeeded(r.approvers, r.approvalsRequired)}
        </div>
      </td>
      <td className="cell-tight">
        <Countdown until={r.expiresAt} warnMs={0} />
        <div className="target-sub">until it expires</div>
      </td>
      <td className="cell-actions">
        <button
          type="button"
          className="button button-ghost button-small"
          disabled={!target}
          onClick={() => target && void showPending(target, r.id)}
        >
          Details
        </button>
        <button
          type="button"
          className="button button-danger-ghost button-small"
          disabled={cancelling}
          onClick={() => void cancelRequest(r.id)}
        >
          {cancelling ? 'Cancelling…' : 'Cancel'}
        </button>
      </td>
    </tr>
  );
}

function HistoryRow({ r }: { r: RequestView }) {
  const now = useNow();
  return (
    <tr data-request-id={r.id} data-status={r.status}>
      <td>
        <TargetTitle id={r.targetId} />
      </td>
      <td className="cell-tight">
        <LevelBadge level={r.level} />
        <div className="target-sub">{formatDuration(r.durationSeconds)}</div>
      </td>
      <td>
        <div className="clamp prose">{r.reason}</div>
        {r.ticket ? <div className="target-sub mono">{r.ticket}</div> : null}
      </td>
      <td className="cell-tight">
        <StatusPill status={r.status} />
        {r.breakGlass ? <span className="flag flag-danger">break-glass</span> : null}
      </td>
      <td>
        <div className="decided">
          {r.status === 'denied' ? (
            <>
              <span>
                by <strong>{r.decidedBy}</strong>:
              </span>{' '}
              <span className="prose" data-testid="decision-reason">
                {r.decisionReason}
              </span>
            </>
          ) : r.status === 'approved' ? (
            <span>by {r.decidedBy === 'policy' ? 'policy (auto)' : r.decidedBy}</span>
          ) : null}
        </div>
        <div className="target-sub">{timeAgo(r.decidedAt ?? r.createdAt, now)}</div>
      </td>
    </tr>
  );
}

/** The gateway's own actor revokes grants that reach their expiry. */
const expiredOnItsOwn = (g: GrantView) => g.revokedBy === 'sallyport' && g.revokeReason === 'expired';

function EndedGrantRow({ g }: { g: GrantView }) {
  const expired = expiredOnItsOwn(g);
  return (
    <tr data-grant-id={g.id} data-target-id={g.targetId} data-status={expired ? 'expired' : g.status}>
      <td>
        <TargetTitle id={g.targetId} />
      </td>
      <td className="cell-tight">
        <LevelBadge level={g.level} />
      </td>
      <td className="cell-tight">
        <StatusPill status={expired ? 'expired-grant' : 'revoked'} />
      </td>
      <td>
        <div className="decided">
          {expired ? (
            'Reached its expiry'
          ) : (
            <>
              by <strong>{g.revokedBy}</strong>
              {g.revokeReason ? (
                <>
                  : <span className="prose">{g.revokeReason}</span>
                </>
              ) : null}
            </>
          )}
        </div>
        <div className="target-sub">
          {g.revokedAt ? formatTimestamp(g.revokedAt) : ''}
          {g.revocation === 'failed' ? ' · closing sessions failed, retrying' : ''}
          {g.revocation === 'pending' ? ' · closing sessions…' : ''}
        </div>
      </td>
    </tr>
  );
}

function Section({
  title,
  count,
  empty,
  head,
  children,
  testId,
}: {
  title: string;
  count: number;
  empty: string;
  head: string[];
  children: ReactNode;
  testId: string;
}) {
  return (
    <section className="panel section" aria-label={title} data-testid={testId}>
      <header className="section-head">
        <h2>{title}</h2>
        <span className="count">{count}</span>
      </header>
      {count === 0 ? (
        <p className="section-empty muted">{empty}</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                {head.map((h) => (
                  <th key={h} scope="col">
                    {h}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>{children}</tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function RevokeDialog() {
  const r = useAccess(selectRevoke);
  if (!r) return null;
  const { setRevokeReason, confirmRevoke, closeRevoke } = useAccess.getState();
  const problem = r.showValidation ? revokeReasonProblem(r.reason) : null;
  return (
    <Modal
      title={`Revoke access to ${targetName(r.grant.targetId)}`}
      subtitle={`${LEVEL_TEXT[r.grant.level]} · ${formatDuration((Date.parse(r.grant.expiresAt) - Date.now()) / 1000)} left`}
      onClose={closeRevoke}
      testId="revoke-dialog"
      initialFocus="#revoke-reason"
      footer={
        <>
          <button type="button" className="button button-ghost" onClick={closeRevoke}>
            Keep access
          </button>
          <button type="submit" form="revoke-form" className="button button-danger" disabled={r.busy}>
            {r.busy ? 'Revoking…' : 'Revoke now'}
          </button>
        </>
      }
    >
      <form
        id="revoke-form"
        className="form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void confirmRevoke();
        }}
      >
        <p className="muted">
          The grant ends at once and every open session under it is closed. This cannot be undone.
        </p>
        <div className="form-field">
          <label htmlFor="revoke-reason">Reason</label>
          <input
            id="revoke-reason"
            type="text"
            value={r.reason}
            placeholder="e.g. done with the migration"
            aria-invalid={problem ? true : undefined}
            aria-describedby="revoke-reason-hint"
            autoComplete="off"
            onChange={(e) => setRevokeReason(e.target.value)}
          />
          <p id="revoke-reason-hint" className={problem ? 'field-error' : 'field-hint'}>
            {problem ?? 'Recorded in the audit ledger.'}
          </p>
        </div>
        {r.error ? (
          <div className="notice notice-error" role="alert">
            {r.error}
          </div>
        ) : null}
      </form>
    </Modal>
  );
}

export function MyAccessView() {
  const status = useAccess(selectAccessStatus);
  const error = useAccess(selectAccessError);
  const active = useAccess(selectActiveGrants);
  const pending = useAccess(selectPendingRequests);
  const past = useAccess(selectPastRequests);
  const ended = useAccess(selectEndedGrants);

  useEffect(() => {
    if (useAccess.getState().status === 'idle') void useAccess.getState().load();
    if (useTargets.getState().status === 'idle') void useTargets.getState().load();
  }, []);

  if (status === 'loading' && active.length + pending.length + past.length === 0) {
    return <div className="empty muted">Loading your access…</div>;
  }

  return (
    <div className="stack" data-testid="my-access">
      {status === 'error' ? (
        <div className="notice notice-error" role="alert">
          Could not load your access: {error}{' '}
          <button
            type="button"
            className="button button-link"
            onClick={() => void useAccess.getState().load()}
          >
            Retry
          </button>
        </div>
      ) : null}
      <Section
        title="Active grants"
        count={active.length}
        empty="No active grants. Double-click a target to request access."
        head={['Target', 'Level', 'Time left', 'Details', '']}
        testId="active-grants"
      >
        {active.map((g) => (
          <GrantRow key={g.id} g={g} />
        ))}
      </Section>
      <Section
        title="Waiting for approval"
        count={pending.length}
        empty="Nothing waiting."
        head={['Target', 'Level', 'Reason', 'Expires in', '']}
        testId="pending-requests"
      >
        {pending.map((r) => (
          <PendingRow key={r.id} r={r} />
        ))}
      </Section>
      <Section
        title="Request history"
        count={past.length}
        empty="No decided requests yet."
        head={['Target', 'Level', 'Reason', 'Outcome', 'Decision']}
        testId="request-history"
      >
        {past.map((r) => (
          <HistoryRow key={r.id} r={r} />
        ))}
      </Section>
      {ended.length > 0 ? (
        <Section
          title="Ended grants"
          count={ended.length}
          empty=""
          head={['Target', 'Level', 'Status', 'How it ended']}
          testId="ended-grants"
        >
          {ended.map((g) => (
            <EndedGrantRow key={g.id} g={g} />
          ))}
        </Section>
      ) : null}
      <p className="muted small footnote">
        <KeyIcon /> Grants end on their own at expiry; sessions under a revoked grant are closed.
      </p>
    </div>
  );
}
