import type { SqlColumn } from '@sallyport/protocol';
import { defaultRangeExtractor, useVirtualizer } from '@tanstack/react-virtual';
import { memo, useMemo, useRef } from 'react';

export const ROW_HEIGHT = 28;
const CHAR_PX = 7.8;
/** The lock icon and its gap in a masked cell. */
const LOCK_PX = 18;
const INDEX_WIDTH = 64;
/** Rows rendered beyond each edge of the view: at rest, and while a scroll is under way. */
const OVERSCAN = 12;
const SCROLLING_OVERSCAN = 3;

export const MASKED_TITLE = 'masked by the gateway';

export const LockIcon = () => (
  <svg
    className="icon cell-lock"
    width="11"
    height="11"
    viewBox="0 0 24 24"
    fill="none"
    stroke="currentColor"
    strokeWidth="2.4"
    strokeLinecap="round"
    strokeLinejoin="round"
    aria-hidden="true"
    focusable="false"
  >
    <rect x="4" y="11" width="16" height="10" rx="2" />
    <path d="M8 11V7a4 4 0 0 1 8 0v4" />
  </svg>
);

/** The rendered rows' React keys, and the first row they were given for. */
export interface RowKeys {
  first: number;
  keys: number[];
}

/**
 * React keys for the rendered rows `first … first + count - 1`, given the previous ones. What a
 * scrolling frame costs most is styling elements that are new or moved in the DOM (a row that
 * keeps its elements and only changes its text costs far less), so:
 *  - a short scroll: rows still in view keep their key (their elements stay as they are), and the
 *    rows coming into view take the keys of the rows that left;
 *  - a long one (most rows new: a fast scroll, a drag of the scrollbar): the rows take the old keys
 *    in the same order — the same elements in the same DOM order, only their text changes.
 */
export function rowKeys(prev: RowKeys | undefined, first: number, count: number): RowKeys {
  const old = prev?.keys ?? [];
  const oldFirst = prev?.first ?? 0;
  const keys: number[] = new Array(count);
  const taken = new Set<number>();
  const stay = Math.max(0, Math.min(first + count, oldFirst + old.length) - Math.max(first, oldFirst));
  if (stay * 2 >= count) {
    for (let i = 0; i < count; i++) {
      const k = first + i >= oldFirst ? old[first + i - oldFirst] : undefined;
      if (k !== undefined) {
        keys[i] = k;
        taken.add(k);
      }
    }
  }
  // The rest, in order: the keys no row kept, then the smallest unused numbers.
  const free = old.filter((k) => !taken.has(k));
  let f = 0;
  let fresh = 0;
  for (let i = 0; i < count; i++) {
    if (keys[i] !== undefined) continue;
    let k = free[f++];
    if (k === undefined) {
      while (taken.has(fresh)) fresh++;
      k = fresh++;
    }
    keys[i] = k;
    taken.add(k);
  }
  return { first, keys };
}

/** Column widths from the header and a sample of the values, within bounds. */
function widthsOf(columns: SqlColumn[], rows: Array<Array<string | null>>, masked: Set<number>): number[] {
  const sample = rows.slice(0, 200);
  const width = columns.length;
  return columns.map((c, i) => {
    let px = Math.max(c.name.length, c.type.length + 2) * CHAR_PX;
    sample.forEach((row, r) => {
      const v = row[i];
      if (!v) return;
      const cell = v.length * CHAR_PX + (masked.has(r * width + i) ? LOCK_PX : 0);
      if (cell > px) px = cell;
    });
    return Math.round(Math.min(400, Math.max(88, px + 26)));
  });
}

export interface ResultGridProps {
  columns: SqlColumn[];
  rows: Array<Array<string | null>>;
  /** Masked cells as `row * columns.length + column`. */
  masked: Set<number>;
  /** Changes when rows were appended in place. */
  version?: number;
  label: string;
  className?: string;
}

/**
 * A virtualized result grid: only the rows in view are in the DOM, and the same elements are
 * reused for the rows that scroll into view, so a result of 100 000 rows scrolls like one of 20.
 * Masked cells are marked (lock icon, muted, `data-masked`) and titled "masked by the gateway";
 * values are rendered as text, never as HTML.
 */
export const ResultGrid = memo(function ResultGrid({
  columns,
  rows,
  masked,
  version = 0,
  label,
  className,
}: ResultGridProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const count = rows.length;
  // Recomputed when the columns change or the first rows arrive (widths come from a sample).
  const sampleKey = Math.min(count, 200);
  // biome-ignore lint/correctness/useExhaustiveDependencies: sampleKey stands for the sampled rows
  const widths = useMemo(() => widthsOf(columns, rows, masked), [columns, sampleKey]);
  const template = `${INDEX_WIDTH}px ${widths.map((w) => `${w}px`).join(' ')}`;
  const totalWidth = INDEX_WIDTH + widths.reduce((a, b) => a + b, 0);
  const scrolling = useRef(false);
  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: OVERSCAN,
    // While a scroll is under way, rows far beyond the view are replaced before they are ever
    // seen: render fewer of them (every rendered row is laid out and painted each frame).
    rangeExtractor: (range) =>
      defaultRangeExtractor(scrolling.current ? { ...range, overscan: SCROLLING_OVERSCAN } : range),
  });
  scrolling.current = virtualizer.isScrolling;
  const width = columns.length;
  const items = virtualizer.getVirtualItems();
  const firstIndex = items[0]?.index ?? 0;
  const keyState = useRef<RowKeys | undefined>(undefined);
  if (keyState.current?.first !== firstIndex || keyState.current.keys.length !== items.length) {
    keyState.current = rowKeys(keyState.current, firstIndex, items.length);
  }
  const keys = keyState.current.keys;
  // Rows in flow (the CSS places them absolutely), and contained: a row's size is fixed, so what
  // changes inside it is laid out and painted alone (a quarter less main-thread time per frame of
  // a fast scroll in headless Chromium).
  const rowStyle = { gridTemplateColumns: template, position: 'relative', contain: 'strict' } as const;

  return (
    <div
      className={`grid-scroll${className ? ` ${className}` : ''}`}
      ref={scroller}
      // No scroll anchoring: the rows above the view are a padding that changes as the grid
      // scrolls, and the browser would otherwise "correct" the scroll position for it.
      style={{ overflowAnchor: 'none' }}
      data-testid="result-grid"
      data-rows={count}
      data-version={version}
    >
      <table
        className="grid-table"
        aria-label={label}
        aria-rowcount={count + 1}
        style={{ width: totalWidth }}
      >
        <thead className="grid-head">
          <tr aria-rowindex={1} style={{ gridTemplateColumns: template }}>
            <th scope="col" className="grid-hcell grid-index">
              #
            </th>
            {columns.map((c, i) => (
              <th
                // biome-ignore lint/suspicious/noArrayIndexKey: columns may share a name
                key={i}
                scope="col"
                className="grid-hcell"
                title={`${c.schema && c.table ? `${c.schema}.${c.table}.` : ''}${c.name} (${c.type})`}
              >
                <span className="grid-hname">{c.name}</span>
                <span className="grid-htype">{c.type}</span>
              </th>
            ))}
          </tr>
        </thead>
        {/* The rendered rows sit in flow below a padding as tall as the rows above them: one style
            change per frame on the body, none on the rows (a per-row transform restyled each row). */}
        <tbody
          className="grid-body"
          style={{ height: virtualizer.getTotalSize(), paddingTop: items[0]?.start ?? 0 }}
        >
          {items.map((item) => {
            const row = rows[item.index];
            if (!row) return null;
            return (
              <tr
                // Not keyed by row: see rowKeys, elements are reused as rows scroll by.
                key={keys[item.index - firstIndex]}
                className={`grid-row${item.index % 2 ? ' grid-row-odd' : ''}`}
                aria-rowindex={item.index + 2}
                style={rowStyle}
              >
                <th scope="row" className="grid-cell grid-index">
                  {item.index + 1}
                </th>
                {row.map((v, c) => {
                  if (masked.has(item.index * width + c)) {
                    return (
                      // biome-ignore lint/suspicious/noArrayIndexKey: cells are positional
                      <td key={c} className="grid-cell cell-masked" title={MASKED_TITLE} data-masked="true">
                        <LockIcon />
                        <span>{v ?? ''}</span>
                      </td>
                    );
                  }
                  return (
                    <td
                      // biome-ignore lint/suspicious/noArrayIndexKey: cells are positional
                      key={c}
                      className={`grid-cell${v === null ? ' cell-null' : ''}`}
                      title={v !== null && v.length > 40 ? v.slice(0, 2000) : undefined}
                    >
                      {v === null ? 'NULL' : v}
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
});
