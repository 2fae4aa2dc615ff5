/**
 * Masking throughput: `npx tsx bench/masking.ts`
 * Masks 2,000,000 typical short cells (names, e-mails, card numbers, numbers, dates,
 * short text) with maskCell, then the same cells laid out as psql-style terminal
 * output through the stream masker. Prints cells/s and MB/s; no assertions.
 */
import { loadavg } from 'node:os';
import { createMasker } from '../gateway-server/src/masking/index';

const CELLS = 2_000_000;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = mulberry32(1);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const digits = (n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) s += String(Math.floor(rnd() * 10));
  return s;
};
function luhn(prefix: string): string {
  for (let d = 0; d <= 9; d++) {
    const c = prefix + d;
    let sum = 0;
    for (let i = 0; i < c.length; i++) {
      let x = c.charCodeAt(c.length - 1 - i) - 48;
      if (i % 2 === 1) {
        x *= 2;
        if (x > 9) x -= 9;
      }
      sum += x;
    }
    if (sum % 10 === 0) return c;
  }
  return prefix;
}

const FIRST = ['Alice', 'Bob', 'Carol', 'Dmitri', 'Eve', 'Fatima', 'Guo', 'Hana', 'Ivan', 'Jorge'];
const LAST = ['Smith', 'Jones', 'Nguyen', 'Garcia', 'Müller', 'Rossi', 'Kowalski', 'Tanaka'];
const WORDS = ['pending', 'shipped', 'refunded', 'active', 'Paris', 'London', 'note: call back', 'n/a'];

interface Cell {
  value: string;
  column: { table: string; name: string };
}

const COLUMNS = {
  name: { table: 'customers', name: 'full_name' },
  email: { table: 'customers', name: 'contact' },
  card: { table: 'payments', name: 'pan' },
  amount: { table: 'payments', name: 'amount' },
  id: { table: 'payments', name: 'id' },
  date: { table: 'payments', name: 'created_at' },
  status: { table: 'payments', name: 'status' },
  phone: { table: 'customers', name: 'phone' },
  password: { table: 'users', name: 'password_hash' },
};

function makeCell(): Cell {
  const r = rnd();
  if (r < 0.22) return { value: `${pick(FIRST)} ${pick(LAST)}`, column: COLUMNS.name };
  if (r < 0.37)
    return {
      value: `${pick(FIRST).toLowerCase()}.${pick(LAST).toLowerCase()}@${pick(['example.com', 'mail.co.uk'])}`,
      column: COLUMNS.email,
    };
  if (r < 0.45) return { value: luhn(`4${digits(14)}`), column: COLUMNS.card };
  if (r < 0.57) return { value: `${digits(3)}.${digits(2)}`, column: COLUMNS.amount };
  if (r < 0.72) return { value: digits(1 + Math.floor(rnd() * 7)), column: COLUMNS.id };
  if (r < 0.84)
    return {
      value: `2024-${digits(2)}-${digits(2)} ${digits(2)}:${digits(2)}:${digits(2)}`,
      column: COLUMNS.date,
    };
  if (r < 0.92) return { value: pick(WORDS), column: COLUMNS.status };
  if (r < 0.97) return { value: `+1 555-${digits(3)}-${digits(4)}`, column: COLUMNS.phone };
  return { value: `$2b$10$${digits(22)}`, column: COLUMNS.password };
}

const DISTINCT = 20_000;
const cells: Cell[] = Array.from({ length: DISTINCT }, makeCell);
const cellBytes = cells.reduce((n, c) => n + Buffer.byteLength(c.value), 0) / DISTINCT;

const masker = createMasker(
  { columns: [{ pattern: 'users.password_hash', strategy: 'full' }] },
  new Uint8Array(32).fill(1),
);

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Runs fn and returns [wall seconds, CPU seconds of this process]. */
function timed(fn: () => void): [number, number] {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return [wall, (c.user + c.system) / 1e6];
}

// ------------------------------------------------------------------ maskCell

function benchCells(withColumn: boolean): void {
  let masked = 0;
  for (let i = 0; i < 200_000; i++) {
    const c = cells[i % DISTINCT]!;
    if (masker.maskCell(c.value, withColumn ? c.column : undefined).masked) masked++;
  }
  masked = 0;
  const [wall, cpu] = timed(() => {
    for (let i = 0; i < CELLS; i++) {
      const c = cells[i % DISTINCT]!;
      if (masker.maskCell(c.value, withColumn ? c.column : undefined).masked) masked++;
    }
  });
  console.log(
    `maskCell ${withColumn ? '(with column)   ' : '(no column info)'}: ${fmt(CELLS / wall)} cells/s, ` +
      `${((CELLS * cellBytes) / wall / 1e6).toFixed(1)} MB/s wall; ${fmt(CELLS / cpu)} cells per CPU-second ` +
      `(${fmt(masked)} of ${fmt(CELLS)} masked, ${wall.toFixed(2)} s)`,
  );
}

// -------------------------------------------------------------- text stream

function benchStream(): void {
  // psql-style aligned rows, 5 cells per row, with an occasional coloured prompt.
  const rows: string[] = [];
  for (let i = 0; i < CELLS / 5; i++) {
    const row: string[] = [];
    for (let k = 0; k < 5; k++) row.push(cells[(i * 5 + k) % DISTINCT]!.value.padEnd(24));
    rows.push(` ${row.join(' | ')}\r\n`);
    if (i % 1000 === 0) rows.push('\x1b[1;32mapp=>\x1b[0m select * from payments;\r\n');
  }
  const text = rows.join('');
  const chunks: string[] = [];
  for (let i = 0; i < text.length; i += 4096) chunks.push(text.slice(i, i + 4096));
  const run = (): number => {
    const s = masker.createStream();
    let n = 0;
    for (const c of chunks) n += s.push(c).length;
    return n + s.flush().length;
  };
  run();
  let outLen = 0;
  const [wall, cpu] = timed(() => {
    outLen = run();
  });
  const mb = Buffer.byteLength(text) / 1e6;
  console.log(
    `stream (4 KiB chunks)      : ${fmt(CELLS / wall)} cells/s, ${(mb / wall).toFixed(1)} MB/s wall; ` +
      `${(mb / cpu).toFixed(1)} MB per CPU-second (${mb.toFixed(0)} MB in, ${fmt(outLen)} chars out)`,
  );
  const part = text.slice(0, 4_000_000);
  let whole = 0;
  const [w1] = timed(() => {
    whole = masker.maskText(part).text.length;
  });
  console.log(`maskText (4 MB at once)    : ${(4 / w1).toFixed(1)} MB/s wall (${fmt(whole)} chars out)`);
}

console.log(
  `node ${process.version}, ${fmt(DISTINCT)} distinct cells, ${cellBytes.toFixed(1)} bytes/cell average, ` +
    `load average ${loadavg()[0]!.toFixed(1)} (wall figures suffer when the machine is busy; CPU-second figures less so)`,
);
benchCells(true);
benchCells(false);
benchStream();
