import type { SqlColumn } from '@sallyport/protocol';
import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useMemo, useRef } from 'react';

export const ROW_HEIGHT = 28;
const CHAR_PX = 7.8;
/** The lock icon and its gap in a masked cell. */
const LOCK_PX = 18;
const INDEX_WIDTH = 64;

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
 * A virtualized result grid: only the rows in view are in the DOM, so a result of 100 000 rows
 * scrolls like one of 20. Masked cells are marked (lock icon, muted, `data-masked`) and titled
 * "masked by the gateway"; values are rendered as text, never as HTML.
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
  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const width = columns.length;
  const items = virtualizer.getVirtualItems();

  return (
    <div
      className={`grid-scroll${className ? ` ${className}` : ''}`}
      ref={scroller}
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
        <tbody className="grid-body" style={{ height: virtualizer.getTotalSize() }}>
          {items.map((item) => {
            const row = rows[item.index];
            if (!row) return null;
            return (
              <tr
                key={item.key}
                className={`grid-row${item.index % 2 ? ' grid-row-odd' : ''}`}
                aria-rowindex={item.index + 2}
                style={{ gridTemplateColumns: template, transform: `translateY(${item.start}px)` }}
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
