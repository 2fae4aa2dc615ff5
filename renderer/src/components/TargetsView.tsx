import type { TargetView } from '@sallyport/protocol';
import { useEffect, useId } from 'react';
import { useAccess } from '../state/access';
import { selectHasRole, useSession } from '../state/session';
import {
  labelPairs,
  selectError,
  selectFiltered,
  selectLabel,
  selectLabelOptions,
  selectQuery,
  selectStatus,
  selectTotal,
  selectVisibleTargets,
  useTargets,
} from '../state/targets';
import { AccessBadge } from './AccessBadge';
import { DatabaseIcon, FilterIcon, SearchIcon, ServerIcon } from './icons';

const KIND_TEXT: Record<TargetView['kind'], string> = { ssh: 'SSH', postgres: 'PostgreSQL' };

function Toolbar() {
  const query = useTargets(selectQuery);
  const label = useTargets(selectLabel);
  const options = useTargets(selectLabelOptions);
  const total = useTargets(selectTotal);
  const shown = useTargets((s) => selectVisibleTargets(s).length);
  const filtered = useTargets(selectFiltered);
  const { setQuery, setLabel, clearFilters } = useTargets.getState();
  const searchId = useId();
  const labelId = useId();
  return (
    <div className="toolbar">
      <div className="field field-search">
        <label htmlFor={searchId} className="visually-hidden">
          Search targets
        </label>
        <SearchIcon />
        <input
          id={searchId}
          type="search"
          placeholder="Search by name, id, host or label"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          autoComplete="off"
          spellCheck={false}
        />
      </div>
      <div className="field field-select">
        <label htmlFor={labelId} className="visually-hidden">
          Filter by label
        </label>
        <FilterIcon />
        <select id={labelId} value={label ?? ''} onChange={(e) => setLabel(e.target.value || null)}>
          <option value="">All labels</option>
          {options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      </div>
      <p className="toolbar-count" aria-live="polite" data-testid="target-count">
        {filtered ? `${shown} of ${total} targets` : `${total} ${total === 1 ? 'target' : 'targets'}`}
      </p>
      {filtered ? (
        <button type="button" className="button button-link" onClick={clearFilters}>
          Clear filters
        </button>
      ) : null}
    </div>
  );
}

/** What double-click / Enter does on a row, by access state (see state/access.ts). */
const ACTION_HINT: Record<TargetView['access']['state'], string> = {
  none: 'request access',
  pending: 'see the pending request',
  active: 'open a session',
  expiring: 'open a session',
};

function TargetRow({ t, activeLabel }: { t: TargetView; activeLabel: string | null }) {
  const setLabel = useTargets((s) => s.setLabel);
  const activate = () => void useAccess.getState().activateTarget(t);
  // Clicks and keys on the label chips keep their own meaning.
  const onChip = (e: { target: EventTarget }) => (e.target as HTMLElement).closest('button') !== null;
  return (
    <tr
      data-target-id={t.id}
      className="target-row"
      tabIndex={0}
      title={`Double-click or press Enter to ${ACTION_HINT[t.access.state]}`}
      onDoubleClick={(e) => {
        if (!onChip(e)) activate();
      }}
      onKeyDown={(e) => {
        if (e.key === 'Enter' && e.target === e.currentTarget) {
          e.preventDefault();
          activate();
        }
      }}
    >
      <td>
        <div className="target-name">{t.name}</div>
        <div className="target-sub mono">{t.id}</div>
      </td>
      <td className="cell-kind">
        <span className={`kind kind-${t.kind}`}>
          {t.kind === 'postgres' ? <DatabaseIcon /> : <ServerIcon />}
          {KIND_TEXT[t.kind]}
        </span>
      </td>
      <td>
        <div className="mono address">
          {t.host}:{t.port}
        </div>
        <div className="target-sub">
          {t.database ? `db ${t.database} · user ${t.user}` : `user ${t.user}`}
        </div>
      </td>
      <td>
        <ul className="labels">
          {labelPairs(t).map((pair) => (
            <li key={pair}>
              <button
                type="button"
                className={`chip${pair === activeLabel ? ' chip-active' : ''}`}
                title={`Show only ${pair}`}
                onClick={() => setLabel(pair === activeLabel ? null : pair)}
              >
                {pair}
              </button>
            </li>
          ))}
        </ul>
      </td>
      <td className="cell-access">
        <AccessBadge access={t.access} />
      </td>
    </tr>
  );
}

export function TargetsView() {
  const status = useTargets(selectStatus);
  const error = useTargets(selectError);
  const targets = useTargets(selectVisibleTargets);
  const total = useTargets(selectTotal);
  const label = useTargets(selectLabel);
  const hasRole = useSession(selectHasRole);
  const { load, clearFilters } = useTargets.getState();

  useEffect(() => {
    if (useTargets.getState().status === 'idle') void load();
  }, [load]);

  if (!hasRole) {
    return (
      <div className="empty" role="status">
        <h2>No Sallyport role yet</h2>
        <p className="muted">
          Your account is signed in but is not in a group that maps to a Sallyport role. Ask an administrator
          to add you to the developers, approvers or admins group.
        </p>
      </div>
    );
  }

  return (
    <section className="panel" aria-label="Targets">
      <Toolbar />
      {status === 'error' ? (
        <div className="notice notice-error" role="alert">
          Could not load targets: {error}{' '}
          <button type="button" className="button button-link" onClick={() => void load()}>
            Retry
          </button>
        </div>
      ) : null}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Address</th>
              <th scope="col">Labels</th>
              <th scope="col">Access</th>
            </tr>
          </thead>
          <tbody>
            {targets.map((t) => (
              <TargetRow key={t.id} t={t} activeLabel={label} />
            ))}
          </tbody>
        </table>
        {status === 'loading' && total === 0 ? (
          <div className="table-empty muted">Loading targets…</div>
        ) : null}
        {status === 'ready' && total === 0 ? (
          <div className="table-empty">
            <strong>No targets yet</strong>
            <span className="muted">Targets are added in the gateway’s config or by an admin.</span>
          </div>
        ) : null}
        {status === 'ready' && total > 0 && targets.length === 0 ? (
          <div className="table-empty">
            <strong>No targets match</strong>
            <button type="button" className="button button-link" onClick={clearFilters}>
              Clear filters
            </button>
          </div>
        ) : null}
      </div>
    </section>
  );
}
