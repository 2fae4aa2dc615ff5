import type { TargetView } from '@sallyport/protocol';
import { useWindowVirtualizer } from '@tanstack/react-virtual';
import { memo, useEffect, useId, useLayoutEffect, useRef, useState } from 'react';
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

interface TargetRowProps {
  t: TargetView;
  activeLabel: string | null;
  /** Position in the filtered list (the virtualizer measures the row by it). */
  index: number;
  measure: (row: HTMLTableRowElement | null) => void;
}

const TargetRow = memo(function TargetRow({ t, activeLabel, index, measure }: TargetRowProps) {
  const setLabel = useTargets((s) => s.setLabel);
  const activate = () => void useAccess.getState().activateTarget(t);
  // Clicks and keys on the label chips keep their own meaning.
  const onChip = (e: { target: EventTarget }) => (e.target as HTMLElement).closest('button') !== null;
  return (
    <tr
      ref={measure}
      data-index={index}
      aria-rowindex={index + 2}
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
});

/** A row's height before it is measured: two lines of text and the cell padding. */
const ESTIMATED_ROW_PX = 64;

/**
 * A rendered row's height. Behind a session tab the list is hidden and its rows measure 0: they
 * keep the estimate instead, or the list would collapse and the virtualizer render every row.
 */
function rowHeight(row: Element, entry: ResizeObserverEntry | undefined): number {
  const px = Math.round(entry?.borderBoxSize[0]?.blockSize ?? row.getBoundingClientRect().height);
  return px > 0 ? px : ESTIMATED_ROW_PX;
}

/** Keeps the space of the rows that are not rendered, so the page scrolls over the whole list. */
const Spacer = ({ height }: { height: number }) =>
  height > 0 ? (
    <tr className="spacer-row" style={{ background: 'transparent' }}>
      <td colSpan={5} aria-hidden="true" style={{ height, padding: 0, border: 0 }} />
    </tr>
  ) : null;

/**
 * The rows, virtualized against the page's own scroll: only the rows in view (and a few more)
 * are in the DOM, so 5,000 targets paint, filter and scroll like 50 — a keystroke in the search
 * re-renders a screenful, not the list. The list's distance from the top of the document is the
 * virtualizer's scroll margin, measured again whenever the page's height changes.
 */
function TargetRows({ targets, activeLabel }: { targets: TargetView[]; activeLabel: string | null }) {
  const body = useRef<HTMLTableSectionElement>(null);
  const [offset, setOffset] = useState(0);
  useLayoutEffect(() => {
    const el = body.current;
    if (!el) return;
    const measure = () => setOffset(Math.round(el.getBoundingClientRect().top + window.scrollY));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(document.body);
    return () => observer.disconnect();
  }, []);
  const virtualizer = useWindowVirtualizer({
    count: targets.length,
    estimateSize: () => ESTIMATED_ROW_PX,
    measureElement: rowHeight,
    getItemKey: (i) => targets[i]?.id ?? i,
    overscan: 6,
    scrollMargin: offset,
    initialRect: { width: window.innerWidth, height: window.innerHeight },
  });
  const items = virtualizer.getVirtualItems();
  const first = items[0];
  const last = items.at(-1);
  const before = first ? first.start - offset : 0;
  const after = last ? virtualizer.getTotalSize() - (last.end - offset) : 0;
  return (
    <tbody ref={body}>
      <Spacer height={before} />
      {items.map((item) => {
        const t = targets[item.index];
        return t ? (
          <TargetRow
            key={t.id}
            t={t}
            activeLabel={activeLabel}
            index={item.index}
            measure={virtualizer.measureElement}
          />
        ) : null;
      })}
      <Spacer height={after} />
    </tbody>
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
        <table className="table" aria-rowcount={targets.length + 1}>
          <thead>
            <tr aria-rowindex={1}>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Address</th>
              <th scope="col">Labels</th>
              <th scope="col">Access</th>
            </tr>
          </thead>
          <TargetRows targets={targets} activeLabel={label} />
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
