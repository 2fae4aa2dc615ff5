import type { RequestView } from '@sallyport/protocol';
import { type FormEvent, type ReactNode, useEffect, useRef } from 'react';
import { LabelChips, LevelBadge } from '../components/access-bits';
import { AlertIcon, ClockIcon, ShieldAlertIcon, ShieldCheckIcon } from '../components/access-icons';
import { Countdown } from '../components/Countdown';
import { Modal } from '../components/Modal';
import { type RequestDialog as Dialog, selectDialog, useAccess } from '../state/access';
import {
  approvalNeeded,
  approvalText,
  durationOptions,
  formatDuration,
  LEVEL_TEXT,
  levelOptions,
  parseApproval,
  ruleFor,
} from './format';
import { requestReasonProblem } from './validate';

function PolicySummary({ d }: { d: Dialog }) {
  if (d.explaining) {
    return (
      <div className="policy policy-loading" aria-busy="true">
        Checking the access rules for this target…
      </div>
    );
  }
  if (d.explainError) {
    return (
      <div className="policy policy-warn">
        <AlertIcon />
        <span>The access rules could not be read ({d.explainError}). The gateway still decides.</span>
      </div>
    );
  }
  const rule = ruleFor(d.explanation, d.form.level);
  if (!rule) {
    return (
      <div className="policy policy-warn" data-testid="policy-summary">
        <AlertIcon />
        <span>
          No access rule lets you request <strong>{d.form.level}</strong> on this target. The gateway will
          refuse the request.
        </span>
      </div>
    );
  }
  const approval = parseApproval(rule.approval);
  return (
    <dl className="policy" data-testid="policy-summary">
      <div>
        <dt>Rule</dt>
        <dd className="mono">{rule.rule}</dd>
      </div>
      <div>
        <dt>Longest grant</dt>
        <dd data-testid="max-duration">{rule.maxDuration}</dd>
      </div>
      <div>
        <dt>Approval</dt>
        <dd data-testid="approval">
          {approval.auto ? (
            <span className="policy-auto">
              <ShieldCheckIcon /> Granted at once
            </span>
          ) : (
            approvalText(approval)
          )}
        </dd>
      </div>
    </dl>
  );
}

function RequestForm({ d }: { d: Dialog }) {
  const { updateForm, submit } = useAccess.getState();
  const rule = ruleFor(d.explanation, d.form.level);
  const levels = levelOptions(d.explanation, d.target.kind);
  const durations = durationOptions(rule?.maxDuration);
  const reasonProblem = d.showValidation ? requestReasonProblem(d.form.reason) : null;
  const reasonRef = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (reasonProblem) reasonRef.current?.focus();
  }, [reasonProblem]);

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit();
  };

  return (
    <form id="request-form" className="form" onSubmit={onSubmit} noValidate>
      <PolicySummary d={d} />
      <div className="form-row">
        <div className="form-field">
          <label htmlFor="request-level">Level</label>
          <select
            id="request-level"
            value={d.form.level}
            disabled={d.extendsGrant !== null}
            onChange={(e) => updateForm({ level: e.target.value as typeof d.form.level })}
          >
            {levels.map((l) => (
              <option key={l} value={l}>
                {l} — {LEVEL_TEXT[l]}
              </option>
            ))}
          </select>
        </div>
        <div className="form-field">
          <label htmlFor="request-duration">{d.extendsGrant ? 'Extend by' : 'Duration'}</label>
          <select
            id="request-duration"
            value={d.form.duration}
            onChange={(e) => updateForm({ duration: e.target.value })}
          >
            {durations.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
        </div>
      </div>
      <div className="form-field">
        <label htmlFor="request-reason">Reason</label>
        <textarea
          id="request-reason"
          ref={reasonRef}
          rows={3}
          value={d.form.reason}
          placeholder="What you need to do, and why now"
          aria-invalid={reasonProblem ? true : undefined}
          aria-describedby="request-reason-hint"
          onChange={(e) => updateForm({ reason: e.target.value })}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.metaKey || e.ctrlKey)) {
              e.preventDefault();
              void submit();
            }
          }}
        />
        <p id="request-reason-hint" className={reasonProblem ? 'field-error' : 'field-hint'}>
          {reasonProblem ?? 'Approvers and the audit ledger see this. At least 10 characters, in words.'}
        </p>
      </div>
      <div className="form-field">
        <label htmlFor="request-ticket">
          Ticket <span className="muted">(optional)</span>
        </label>
        <input
          id="request-ticket"
          type="text"
          value={d.form.ticket}
          placeholder="e.g. OPS-1234"
          autoComplete="off"
          spellCheck={false}
          onChange={(e) => updateForm({ ticket: e.target.value })}
        />
      </div>
      {rule?.breakGlass && !d.extendsGrant ? (
        <label className={`breakglass${d.form.breakGlass ? ' breakglass-on' : ''}`}>
          <input
            type="checkbox"
            checked={d.form.breakGlass}
            onChange={(e) => updateForm({ breakGlass: e.target.checked })}
          />
          <span>
            <strong>Break glass</strong> — emergency access at once, without waiting. Every approver is
            notified and the grant is flagged for review.
          </span>
        </label>
      ) : null}
      {d.error ? (
        <div className="notice notice-error" role="alert" data-testid="request-error">
          {d.error}
        </div>
      ) : null}
    </form>
  );
}

function RequestFacts({ r }: { r: RequestView }) {
  return (
    <dl className="facts">
      <div>
        <dt>Level</dt>
        <dd>
          <LevelBadge level={r.level} /> {LEVEL_TEXT[r.level]}
        </dd>
      </div>
      <div>
        <dt>Duration</dt>
        <dd>{formatDuration(r.durationSeconds)}</dd>
      </div>
      <div className="facts-wide">
        <dt>Reason</dt>
        <dd className="prose">{r.reason}</dd>
      </div>
      {r.ticket ? (
        <div>
          <dt>Ticket</dt>
          <dd className="mono">{r.ticket}</dd>
        </div>
      ) : null}
    </dl>
  );
}

function Waiting({ d }: { d: Dialog }) {
  const r = d.request;
  if (!r) {
    return (
      <div className="waiting" aria-busy="true">
        <span className="spinner" aria-hidden="true" /> Loading the request…
      </div>
    );
  }
  const got = r.approvals.filter((a) => a.decision === 'approve');
  return (
    <div className="waiting-block">
      <div className="waiting" role="status" data-testid="waiting">
        <span className="spinner" aria-hidden="true" />
        <div>
          <strong>Waiting for approval from {approvalNeeded(r.approvers, r.approvalsRequired)}</strong>
          <span className="muted">
            {got.length > 0
              ? `${got.length} of ${r.approvalsRequired} approved (${got.map((a) => a.approver).join(', ')}). `
              : ''}
            {r.extendsGrantId
              ? 'The grant is extended once approved.'
              : 'The tab opens by itself once approved — you can close this window.'}
          </span>
        </div>
      </div>
      <RequestFacts r={r} />
      <p className="muted small">
        <ClockIcon />
        <span>
          The request expires if nobody decides within <Countdown until={r.expiresAt} warnMs={0} />.
        </span>
      </p>
      {d.error ? (
        <div className="notice notice-error" role="alert">
          {d.error}
        </div>
      ) : null}
    </div>
  );
}

function Ended({ d }: { d: Dialog }) {
  const r = d.request!;
  return (
    <div className="waiting-block">
      {d.phase === 'denied' ? (
        <div className="decision decision-denied" role="alert" data-testid="denied">
          <ShieldAlertIcon />
          <div>
            <strong>Denied by {r.decidedBy ?? 'an approver'}</strong>
            <p className="prose" data-testid="denial-reason">
              {r.decisionReason}
            </p>
          </div>
        </div>
      ) : (
        <div className="decision decision-ended" role="status">
          <AlertIcon />
          <strong>
            {d.phase === 'expired'
              ? 'Nobody decided in time; the request expired.'
              : 'The request was cancelled.'}
          </strong>
        </div>
      )}
      <RequestFacts r={r} />
    </div>
  );
}

export function RequestDialog() {
  const d = useAccess(selectDialog);
  if (!d) return null;
  const { closeDialog, cancelRequest, openRequest } = useAccess.getState();
  const rule = ruleFor(d.explanation, d.form.level);
  const auto = rule ? parseApproval(rule.approval).auto : false;
  const title =
    d.phase === 'form'
      ? d.extendsGrant
        ? `Extend access to ${d.target.name}`
        : `Request access to ${d.target.name}`
      : d.phase === 'pending'
        ? `Access to ${d.target.name}`
        : `Request for ${d.target.name}`;

  let footer: ReactNode;
  if (d.phase === 'form') {
    footer = (
      <>
        <button type="button" className="button button-ghost" onClick={closeDialog}>
          Cancel
        </button>
        <button
          type="submit"
          form="request-form"
          className={`button ${d.form.breakGlass ? 'button-danger' : 'button-primary'}`}
          disabled={d.submitting}
        >
          {d.submitting
            ? 'Sending…'
            : d.form.breakGlass
              ? 'Break glass now'
              : d.extendsGrant
                ? 'Request extension'
                : auto
                  ? 'Get access'
                  : 'Request access'}
        </button>
      </>
    );
  } else if (d.phase === 'pending') {
    footer = (
      <>
        <button
          type="button"
          className="button button-danger-ghost"
          disabled={!d.request || d.cancelling}
          onClick={() => d.request && void cancelRequest(d.request.id)}
        >
          {d.cancelling ? 'Cancelling…' : 'Cancel request'}
        </button>
        <button type="button" className="button button-primary" onClick={closeDialog}>
          Keep waiting
        </button>
      </>
    );
  } else {
    footer = (
      <>
        <button type="button" className="button button-ghost" onClick={closeDialog}>
          Close
        </button>
        <button type="button" className="button button-primary" onClick={() => openRequest(d.target)}>
          Request again
        </button>
      </>
    );
  }

  return (
    <Modal
      key={d.token}
      title={title}
      subtitle={
        <span className="modal-target">
          <span className="mono">{d.target.id}</span>
          <span className="muted">
            {d.target.kind === 'postgres' ? 'PostgreSQL' : 'SSH'} · {d.target.host}
          </span>
          <LabelChips labels={d.target.labels} />
        </span>
      }
      onClose={closeDialog}
      testId="request-dialog"
      initialFocus={d.phase === 'form' ? '#request-reason' : undefined}
      footer={footer}
    >
      {d.phase === 'form' ? (
        <RequestForm d={d} />
      ) : d.phase === 'pending' ? (
        <Waiting d={d} />
      ) : (
        <Ended d={d} />
      )}
      {d.phase === 'form' && d.form.breakGlass ? null : d.phase === 'form' && rule && !auto ? (
        <p className="muted small dialog-note">
          You will be told here as soon as it is decided
          {d.extendsGrant ? '.' : '; the tab then opens by itself.'}
        </p>
      ) : null}
    </Modal>
  );
}
