import type { AuditEventView } from '@sallyport/protocol';
import { type FormEvent, useEffect, useId } from 'react';
import { formatTimestamp } from '../access/format';
import { AlertIcon, LedgerIcon, ShieldCheckIcon } from '../components/access-icons';
import { FilterIcon, SearchIcon } from '../components/icons';
import { useTargets } from '../state/targets';
import {
  selectAuditError,
  selectAuditEvents,
  selectAuditStatus,
  selectDraft,
  selectFiltered,
  selectHasMore,
  selectLoadingMore,
  selectVerify,
  useAudit,
} from './store';

/** Families and frequent kinds, offered as suggestions; any exact kind can be typed. */
const KIND_SUGGESTIONS = [
  'request.*',
  'grant.*',
  'revocation.*',
  'review.*',
  'session.*',
  'access.refused',
  'console.*',
  'target.*',
  'auth.*',
  'request.created',
  'request.approved',
  'request.denied',
  'grant.issued',
  'grant.break_glass',
  'grant.reviewed',
  'grant.revoked',
];

const family = (kind: string) => kind.split('.')[0] ?? kind;

/** The event's data as short `key: value` text; the whole object is one click away. */
function summary(e: AuditEventView): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(e.data)) {
    if (v === null || v === undefined || v === false) continue;
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    parts.push(`${k}: ${text.length > 80 ? `${text.slice(0, 79)}…` : text}`);
  }
  return parts.join(' · ');
}

function EventRow({ e }: { e: AuditEventView }) {
  const text = summary(e);
  return (
    <tr data-seq={e.seq} data-kind={e.kind}>
      <td className="cell-tight mono muted">{e.seq}</td>
      <td className="cell-tight mono small">{formatTimestamp(e.at).replace(' UTC', '')}</td>
      <td className="cell-tight">
        <span className={`kind-chip kind-chip-${family(e.kind)}`}>{e.kind}</span>
      </td>
      <td className="cell-tight">
        <span className="actor">{e.actor}</span>
        {e.actorKind !== 'user' ? <span className="target-sub"> {e.actorKind}</span> : null}
      </td>
      <td className="cell-tight">{e.subject && e.subject !== e.actor ? e.subject : ''}</td>
      <td className="cell-tight mono small">{e.targetId ?? ''}</td>
      <td className="cell-data">
        {text ? (
          <details>
            <summary className="data-summary">{text}</summary>
            <pre className="code code-sm">{JSON.stringify(e.data, null, 2)}</pre>
            <p className="target-sub mono">
              hash {e.hash.slice(0, 16)}… · prev {e.prevHash.slice(0, 16)}…
              {e.requestId ? ` · request ${e.requestId}` : ''}
            </p>
          </details>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
    </tr>
  );
}

function Filters() {
  const draft = useAudit(selectDraft);
  const filtered = useAudit(selectFiltered);
  const targets = useTargets((s) => s.targets);
  const { setDraft, apply, clearFilters } = useAudit.getState();
  const kindList = useId();
  const targetList = useId();
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void apply();
  };
  return (
    <form className="audit-filters" onSubmit={onSubmit} aria-label="Filter the ledger">
      <div className="form-field">
        <label htmlFor="audit-actor">User</label>
        <div className="field">
          <SearchIcon />
          <input
            id="audit-actor"
            type="text"
            value={draft.actor}
            placeholder="any"
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setDraft({ actor: e.target.value })}
          />
        </div>
      </div>
      <div className="form-field">
        <label htmlFor="audit-target">Target</label>
        <div className="field">
          <SearchIcon />
          <input
            id="audit-target"
            type="text"
            list={targetList}
            value={draft.target}
            placeholder="any"
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setDraft({ target: e.target.value })}
          />
        </div>
        <datalist id={targetList}>
          {targets.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </datalist>
      </div>
      <div className="form-field">
        <label htmlFor="audit-kind">Kind</label>
        <div className="field">
          <FilterIcon />
          <input
            id="audit-kind"
            type="text"
            list={kindList}
            value={draft.kind}
            placeholder="any, or e.g. request.*"
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setDraft({ kind: e.target.value })}
          />
        </div>
        <datalist id={kindList}>
          {KIND_SUGGESTIONS.map((k) => (
            <option key={k} value={k} />
          ))}
        </datalist>
      </div>
      <div className="form-field">
        <label htmlFor="audit-since">From</label>
        <input
          id="audit-since"
          type="datetime-local"
          value={draft.since}
          onChange={(e) => setDraft({ since: e.target.value })}
        />
      </div>
      <div className="form-field">
        <label htmlFor="audit-until">To</label>
        <input
          id="audit-until"
          type="datetime-local"
          value={draft.until}
          onChange={(e) => setDraft({ until: e.target.value })}
        />
      </div>
      <div className="audit-filter-actions">
        <button type="submit" className="button button-primary">
          Apply
        </button>
        {filtered ? (
          <button type="button" className="button button-link" onClick={() => void clearFilters()}>
            Clear
          </button>
        ) : null}
      </div>
    </form>
  );
}

function VerifyResult() {
  const v = useAudit(selectVerify);
  if (v.status === 'idle') return null;
  if (v.status === 'running') {
    return (
      <div className="verify verify-running" role="status">
        <span className="spinner" aria-hidden="true" /> Recomputing the hash chain…
      </div>
    );
  }
  if (v.status === 'error' || !v.result) {
    return (
      <div className="verify verify-bad" role="alert">
        <AlertIcon /> Could not verify: {v.error}
      </div>
    );
  }
  const r = v.result;
  if (r.ok) {
    return (
      <div className="verify verify-ok" role="status" data-testid="verify-result" data-ok="true">
        <ShieldCheckIcon />
        <span>
          <strong>Intact: {r.count} events</strong>
          <span className="mono small muted"> · head {r.head.slice(0, 16)}…</span>
        </span>
      </div>
    );
  }
  return (
    <div className="verify verify-bad" role="alert" data-testid="verify-result" data-ok="false">
      <AlertIcon />
      <span>
        <strong>Tampered at event #{r.seq}</strong> <span className="mono small">({r.id})</span>: {r.problem}.{' '}
        {r.count} events before it are intact.
      </span>
    </div>
  );
}

export function AuditView() {
  const status = useAudit(selectAuditStatus);
  const error = useAudit(selectAuditError);
  const events = useAudit(selectAuditEvents);
  const hasMore = useAudit(selectHasMore);
  const loadingMore = useAudit(selectLoadingMore);
  const filtered = useAudit(selectFiltered);
  const verifying = useAudit((s) => s.verify.status === 'running');
  const { apply, loadMore, runVerify } = useAudit.getState();

  useEffect(() => {
    if (useAudit.getState().status === 'idle') void useAudit.getState().apply();
    if (useTargets.getState().status === 'idle') void useTargets.getState().load();
  }, []);

  return (
    <div className="stack" data-testid="audit">
      <section className="panel">
        <header className="section-head">
          <h2>
            <LedgerIcon /> Ledger
          </h2>
          <p className="muted small section-note">
            Append-only and hash-chained: every event’s hash covers the one before it.
          </p>
          <button
            type="button"
            className="button button-ghost"
            disabled={verifying}
            onClick={() => void runVerify()}
          >
            <ShieldCheckIcon />
            {verifying ? 'Verifying…' : 'Verify'}
          </button>
        </header>
        <VerifyResult />
        <Filters />
        {status === 'error' ? (
          <div className="notice notice-error" role="alert">
            Could not load the ledger: {error}{' '}
            <button type="button" className="button button-link" onClick={() => void apply()}>
              Retry
            </button>
          </div>
        ) : null}
        <div className="table-wrap">
          <table className="table table-audit">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Time (UTC)</th>
                <th scope="col">Kind</th>
                <th scope="col">Actor</th>
                <th scope="col">Subject</th>
                <th scope="col">Target</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => (
                <EventRow key={e.id} e={e} />
              ))}
            </tbody>
          </table>
          {status === 'loading' ? <div className="table-empty muted">Loading the ledger…</div> : null}
          {status === 'ready' && events.length === 0 ? (
            <div className="table-empty">
              <strong>{filtered ? 'No events match these filters' : 'The ledger is empty'}</strong>
            </div>
          ) : null}
        </div>
        <footer className="section-foot">
          <span className="muted small" data-testid="audit-count">
            {events.length} {events.length === 1 ? 'event' : 'events'}
            {filtered ? ' matching' : ''}
          </span>
          {hasMore ? (
            <button
              type="button"
              className="button button-ghost button-small"
              disabled={loadingMore}
              onClick={() => void loadMore()}
            >
              {loadingMore ? 'Loading…' : 'Load more'}
            </button>
          ) : null}
        </footer>
      </section>
    </div>
  );
}
