import type { SqlColumn } from '@sallyport/protocol';

/**
 * CSV (RFC 4180, CRLF) of a result exactly as shown: masked cells keep their masked text, NULL is
 * an empty field. A cell that a spreadsheet would run as a formula (`=`, `+`, `@`, tab, CR, or a
 * `-` not followed by a number) is prefixed with `'` so opening the file cannot execute anything.
 */
export function toCsv(columns: SqlColumn[], rows: ReadonlyArray<ReadonlyArray<string | null>>): string {
  const lines = [columns.map((c) => field(c.name)).join(',')];
  for (const row of rows) lines.push(row.map((v) => (v === null ? '' : field(v))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

const FORMULA = /^(?:[=+@\t\r]|-(?![\d.]))/;

function field(value: string): string {
  const v = FORMULA.test(value) ? `'${value}` : value;
  return /[",\r\n]|^\s|\s$/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/** Saves text as a file through the browser's download (the desktop app routes it to a save dialog). */
export function download(filename: string, text: string, type: string): void {
  // A BOM so spreadsheet apps read the masking bullets as UTF-8.
  const blob = new Blob(['\uFEFF', text], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function csvFilename(target: string, at = new Date()): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return `${target}-${stamp}.csv`;
}

/** 1-based line and column of a 1-based character position in `text` (PostgreSQL's error position). */
export function lineColOf(text: string, position: number): { line: number; column: number } {
  const lines = text.slice(0, Math.max(0, position - 1)).split('\n');
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}
