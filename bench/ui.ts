/**
 * The web console in Chromium with many targets and a large SQL result (issue 6's goals):
 * `npm run bench:ui`.
 *
 * Real parts only: one embedded PostgreSQL (devstack) holding a 100,000-row `bench_grid` table
 * (e-mails and card numbers, so the gateway masks cells), one in-process test gateway serving the
 * built console (e2e/support/console.ts: rebuilds renderer/dist when its sources are newer) with
 * 5,000 config targets (ssh and postgres, labels env=prod/staging/dev, team=…, region=…) plus the
 * `grid-db` target, the development OIDC provider, and Debian's Chromium driven by playwright-core
 * (the e2e flags, 1280×800). Alice signs in through the provider's login page, as in the e2e tests.
 *
 *  1. Time to first paint of the targets list. Start: the navigation start of the page
 *     (`performance.timeOrigin`) — once for the load that completes sign-in (that navigation starts
 *     when the provider's login form is submitted and follows the redirects through the gateway's
 *     callback, so it includes the sign-in itself), then for RELOADS reloads of the
 *     signed-in console (assets from the browser cache as the gateway allows). End: the end of the
 *     first frame showing a target row — a MutationObserver (installed before any page script)
 *     sees the first `tr[data-target-id]` enter the DOM, then requestAnimationFrame + a
 *     MessageChannel message marks the end of that frame's rendering (paint included). Also shown:
 *     DOMContentLoaded, the end of the `GET /api/targets` response, and the row entering the DOM.
 *     Goal: ≤ 1 s (p50 of the reloads).
 *  2. Filter time per keystroke: three queries typed into the search box one character at a time
 *     (80 ms pause after each keystroke's frame, like a fast typist), the box cleared between them
 *     (select all + Backspace, reported apart: it brings back all 5,000 rows). Per keystroke: from
 *     the keydown's `event.timeStamp` to the end of the first frame in which the list shows the
 *     filtered result — the target count says the expected "<n> of 5,001 targets" and the first row
 *     is the expected target (both computed here with the console's matching and ordering rules,
 *     from `GET /api/targets`). Goal: ≤ 50 ms (p99). The Event Timing API's keydown durations
 *     (interactions over 16 ms) are kept in the JSON as a cross-check.
 *  3. Scrolling the SQL grid through 100,000 rows: alice opens a SQL tab on `grid-db` (read grant)
 *     and runs `select * from bench_grid order by id`; the gateway's row cap
 *     (`guardrails.sql.maxRows`, 10,000 by default) is raised to 100,000 for this gateway, so one
 *     result of 100,000 rows reaches the grid. The grid's scrollTop is then moved in every
 *     animation frame: (a) fast, SCROLL_STEP viewports a frame from the first row to the last
 *     (every frame shows only rows that were not in view: a fling, a drag of the scrollbar);
 *     (b) wheel-like, 84 px (3 rows) a frame for WHEEL_FRAMES frames from the middle. Frame times
 *     are requestAnimationFrame deltas. Reported: frames, p50/p99/max frame time, frames that
 *     missed a vsync (delta ≥ 25 ms, i.e. longer than 16.7 ms plus jitter) and over 50 ms, the
 *     time taken, where the main thread's time went (CDP Performance metrics), the main thread's
 *     CPU time per frame (a trace of top-level tasks: unlike wall time, not stretched by other
 *     processes on a busy machine), and the JS heap (CDP, after a forced GC) before the run, with
 *     the 100,000 rows held, and after the scrolls. Goals: p99 < 25 ms and no frame over 50 ms
 *     (the issue names no number; this is "no visible stutter"), and main-thread CPU ≤ 16.7 ms
 *     a frame.
 *
 * There is no "direct" path for a UI, so no ratios: absolute figures against the goals. Prints
 * tables and writes bench/results/ui-<ts>.json. No assertions.
 *
 * Knobs: SALLYPORT_BENCH_TARGETS (5000), SALLYPORT_BENCH_RELOADS (5), SALLYPORT_BENCH_SCROLL_STEP
 * (viewports per frame of the fast scroll, 3), SALLYPORT_BENCH_WHEEL_FRAMES (600), SALLYPORT_BENCH_PROFILE=1 (the page's functions with the most self
 * time during the scroll), SALLYPORT_BENCH_VERBOSE=1 (every sample as it comes),
 * SALLYPORT_CHROMIUM (the browser binary, default /usr/bin/chromium).
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { RunningPostgres } from '@sallyport/gateway-server/devstack';
import type { TestGateway } from '@sallyport/gateway-server/rig';
import type { TargetInput, TargetView } from '@sallyport/protocol';
import pg from 'pg';
import type { Browser, CDPSession, Locator, Page } from 'playwright-core';
import { launchBrowser, newUserContext, type PageProblem, watchPage } from '../e2e/support/browser';
import { signInThroughProvider } from '../e2e/support/console';
import { runSql } from '../e2e/support/sessions';
import {
  envNumber,
  fmt,
  fmtInt,
  hardDeadline,
  log,
  machineLine,
  mb,
  mulberry32,
  printTable,
  profiling,
  type Summary,
  sleep,
  summarize,
  withLuhn,
  writeResult,
} from './support';

const TARGETS = envNumber('SALLYPORT_BENCH_TARGETS', 5000);
const RELOADS = envNumber('SALLYPORT_BENCH_RELOADS', 5);
const SCROLL_STEP = envNumber('SALLYPORT_BENCH_SCROLL_STEP', 3);
/** The wheel-like scroll: three rows per frame (a mouse wheel notch is about 100 px). */
const WHEEL_PX = 84;
const WHEEL_FRAMES = envNumber('SALLYPORT_BENCH_WHEEL_FRAMES', 600);
const ROW_PX = 28;
const GRID_ROWS = 100_000;
const QUERIES = ['payments', 'env=staging db', 'search-worker-01'];
const KEY_PAUSE_MS = 80;
const GOAL_PAINT_MS = 1000;
const GOAL_KEY_MS = 50;
/** A frame delta at or above this missed at least one vsync (16.7 ms at 60 Hz, plus jitter). */
const MISSED_VSYNC_MS = 25;
const GRID_DB = 'grid-db';
const GRID_SQL = 'select * from bench_grid order by id';
const REASON = 'benchmark: scrolling a large result in the console';

// ---------- the console, built for production ----------

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CONSOLE_DIR = fileURLToPath(new URL('./results/console/', import.meta.url));

function newestMtime(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(p)) newest = Math.max(newest, newestMtime(`${p}/${entry}`));
  return newest;
}

/**
 * A production build of the renderer in bench/results/console (rebuilt when the sources are
 * newer). Not renderer/dist: the e2e tests build that one under vitest, whose NODE_ENV=test gives
 * React's development build — several times slower, and not what users run.
 */
function buildConsole(): string {
  const index = `${CONSOLE_DIR}index.html`;
  const builtAt = existsSync(index) ? statSync(index).mtimeMs : 0;
  const sources = ['renderer/src', 'renderer/index.html', 'renderer/vite.config.ts', 'protocol/src'];
  if (builtAt > 0 && sources.every((s) => newestMtime(`${ROOT}${s}`) <= builtAt)) return CONSOLE_DIR;
  log('building the console (production) into bench/results/console');
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn', '--outDir', CONSOLE_DIR, '--emptyOutDir'], {
    cwd: `${ROOT}renderer`,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: 'pipe',
  });
  if (!existsSync(index)) throw new Error(`the console build produced no ${index}`);
  return CONSOLE_DIR;
}

// ---------- the 5,000 targets ----------

const TEAMS = ['payments', 'search', 'platform', 'identity', 'data', 'growth', 'billing', 'infra'];
const SERVICES = ['api', 'db', 'worker', 'cache', 'gateway', 'batch'];
const ENVS = ['prod', 'staging', 'dev'];
const REGIONS = ['eu-west-1', 'us-east-1', 'ap-south-1'];

/** An OpenSSH `ssh-ed25519` public key line (the targets are never connected to). */
function hostKeyLine(): string {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  const raw = der.subarray(der.length - 32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64')}`;
}

/** Deterministic targets (mulberry32 seed 6): names `<team>-<service>-<nn>-<env>`, varied labels. */
function manyTargets(n: number): TargetInput[] {
  const rnd = mulberry32(6);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const hostKey = hostKeyLine();
  const seen = new Map<string, number>();
  const out: TargetInput[] = [];
  for (let i = 0; i < n; i++) {
    const team = pick(TEAMS);
    const service = pick(SERVICES);
    const env = pick(ENVS);
    const region = pick(REGIONS);
    const base = `${team}-${service}`;
    const k = (seen.get(base) ?? 0) + 1;
    seen.set(base, k);
    const id = `${base}-${String(k).padStart(2, '0')}-${env}`;
    const labels: Record<string, string> = { env, team, region };
    if (rnd() < 0.3) labels.tier = pick(['critical', 'standard', 'best-effort']);
    if (rnd() < 0.15) labels.guardrails = 'shell';
    const common = {
      id,
      name: id,
      description: `${team} ${service} in ${region} (${env})`,
      host: `${id}.${region}.internal.example`,
      labels,
    };
    out.push(
      service === 'db'
        ? { ...common, kind: 'postgres', port: 5432, user: 'app_ro', database: team, tls: 'disable' }
        : { ...common, kind: 'ssh', port: 22, user: 'deploy', hostKey },
    );
  }
  return out;
}

// ---------- the console's filter rules, for the expected result of each keystroke ----------

const labelPairs = (t: TargetView): string[] => Object.entries(t.labels).map(([k, v]) => `${k}=${v}`);

/** renderer/src/state/targets.ts: every word of the query in name, id, kind, host, … or a label. */
function matchesQuery(t: TargetView, query: string): boolean {
  const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const haystack = [t.name, t.id, t.kind, t.host, t.description ?? '', t.database ?? '', ...labelPairs(t)]
    .join(' ')
    .toLowerCase();
  return words.every((w) => haystack.includes(w));
}

interface Expectation {
  count: string;
  first: string | null;
}

function expectationFor(all: TargetView[], query: string): Expectation {
  const shown = all
    .filter((t) => matchesQuery(t, query))
    .sort((a, b) => a.name.localeCompare(b.name, 'en-US'));
  const filtered = query.trim() !== '';
  return {
    count: filtered ? `${shown.length} of ${all.length} targets` : `${all.length} targets`,
    first: shown[0]?.id ?? null,
  };
}

// ---------- in the page (plain JavaScript: bench/ compiles without the DOM library) ----------

/**
 * Installed before any page script of every document: marks the first painted target row, and
 * times each keystroke from its keydown to the end of the first frame showing `__bench.expect`.
 */
const PROBE = `(() => {
  const afterFrame = (cb) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => cb(performance.now());
    ch.port2.postMessage(null);
  };
  const b = (window.__bench = { rowInDom: null, rowPainted: null, keys: [], expect: null, events: [] });
  const mo = new MutationObserver(() => {
    if (b.rowInDom === null && document.querySelector('tr[data-target-id]')) {
      b.rowInDom = performance.now();
      mo.disconnect();
      requestAnimationFrame(() => afterFrame((t) => { b.rowPainted = t; }));
    }
  });
  mo.observe(document, { childList: true, subtree: true });
  addEventListener('keydown', (e) => {
    const want = b.expect;
    if (!want) return;
    b.expect = null;
    const t0 = e.timeStamp;
    let frames = 0;
    const check = () => {
      frames++;
      const count = document.querySelector('[data-testid="target-count"]')?.textContent ?? null;
      const first = document.querySelector('tr[data-target-id]')?.getAttribute('data-target-id') ?? null;
      if (count === want.count && first === want.first) {
        afterFrame((t) => b.keys.push({ key: e.key, ms: t - t0, frames }));
      } else if (frames > 600) {
        b.keys.push({ key: e.key, ms: NaN, frames, error: 'expected ' + JSON.stringify(want) + ', shown ' + JSON.stringify({ count, first }) });
      } else {
        requestAnimationFrame(check);
      }
    };
    requestAnimationFrame(check);
  }, true);
  try {
    new PerformanceObserver((list) => {
      for (const en of list.getEntries()) {
        if (en.name === 'keydown') b.events.push({ name: en.name, duration: en.duration, interactionId: en.interactionId });
      }
    }).observe({ type: 'event', durationThreshold: 16, buffered: true });
  } catch {}
})();`;

interface PaintSample {
  /** All in ms from the navigation start. */
  domContentLoaded: number;
  targetsResponseEnd: number;
  rowInDom: number;
  rowPainted: number;
}

const PAINT_TIMES = `(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource').filter((r) => new URL(r.name).pathname === '/api/targets');
  return {
    domContentLoaded: nav ? nav.domContentLoadedEventEnd : NaN,
    targetsResponseEnd: res.length ? res[0].responseEnd : NaN,
    rowInDom: window.__bench.rowInDom,
    rowPainted: window.__bench.rowPainted,
  };
})()`;

interface KeySample {
  key: string;
  ms: number;
  frames: number;
  error?: string;
}

interface ScrollRun {
  deltas: number[];
  ms: number;
  lastRow: number;
  viewport: number;
  scrollHeight: number;
  rowsInDom: number;
}

/**
 * Scrolls the visible result grid from `fromTop` px, `stepJs` px further (a JS expression, it may
 * use `el.clientHeight`) in every animation frame, until its last row (`rows`) is rendered or
 * after `maxFrames` frames; returns the frame deltas.
 */
const scrollScript = (o: {
  fromTop: number;
  stepJs: string;
  rows: number;
  maxFrames: number;
}) => `(async () => {
  const el = document.querySelector('.workspace-tab:not([hidden]) [data-testid="result-grid"]');
  const frame = () => new Promise((r) => requestAnimationFrame(r));
  const lastRow = () => {
    const ths = el.querySelectorAll('tbody tr th');
    return ths.length ? Number(ths[ths.length - 1].textContent) : 0;
  };
  el.scrollTop = ${o.fromTop};
  await frame();
  await frame();
  const deltas = [];
  let last = await frame();
  const t0 = last;
  for (let i = 0; i < ${o.maxFrames}; i++) {
    el.scrollTop = Math.min(el.scrollTop + ${o.stepJs}, el.scrollHeight);
    const t = await frame();
    deltas.push(t - last);
    last = t;
    if (lastRow() === ${o.rows}) break;
  }
  return { deltas, ms: last - t0, lastRow: lastRow(), viewport: el.clientHeight, scrollHeight: el.scrollHeight,
    rowsInDom: el.querySelectorAll('tbody tr').length };
})()`;

// ---------- helpers ----------

async function heapUsed(cdp: CDPSession): Promise<{ jsHeapUsed: number; nodes: number }> {
  await cdp.send('HeapProfiler.collectGarbage');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const get = (name: string) => metrics.find((m) => m.name === name)?.value ?? Number.NaN;
  return { jsHeapUsed: get('JSHeapUsedSize'), nodes: get('Nodes') };
}

/** The renderer main thread's cumulative work (CDP Performance metrics; durations in seconds). */
const MAIN_THREAD = [
  'TaskDuration',
  'ScriptDuration',
  'RecalcStyleDuration',
  'LayoutDuration',
  'RecalcStyleCount',
  'LayoutCount',
] as const;
type MainThread = Record<(typeof MAIN_THREAD)[number], number>;

async function mainThread(cdp: CDPSession): Promise<MainThread> {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return Object.fromEntries(
    MAIN_THREAD.map((k) => [k, metrics.find((m) => m.name === k)?.value ?? Number.NaN]),
  ) as MainThread;
}

const diffMainThread = (a: MainThread, b: MainThread): MainThread =>
  Object.fromEntries(MAIN_THREAD.map((k) => [k, b[k] - a[k]])) as MainThread;

interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }>;
}

/** SALLYPORT_BENCH_PROFILE=1: the page's functions with the most self time during the scroll. */
function topSelfTime(profile: CpuProfile): void {
  const total = profile.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0) || 1;
  const self = new Map<string, number>();
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const key =
      `${f.functionName || '(anonymous)'} ${f.url ? `${f.url.replace(/^.*\//, '')}:${f.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
  }
  log('CPU profile of the page during the scroll, top self time:');
  for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20))
    log(`  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
}

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string };
}

/**
 * CPU ms per frame of the renderer's threads, from a trace of top-level tasks: its main thread
 * (the CrRendererMain busiest in the trace), its compositor, and its raster workers.
 */
function threadCpu(trace: Buffer, frames: number) {
  const events = (JSON.parse(trace.toString('utf8')) as { traceEvents: TraceEvent[] }).traceEvents;
  const names = new Map<string, string>();
  for (const e of events)
    if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}:${e.tid}`, e.args?.name ?? '');
  const cpu = new Map<string, { cpu: number; wall: number }>();
  for (const e of events) {
    if (e.ph !== 'X' || e.tdur === undefined) continue;
    const k = `${e.pid}:${e.tid}`;
    const c = cpu.get(k) ?? { cpu: 0, wall: 0 };
    c.cpu += e.tdur;
    c.wall += e.dur ?? 0;
    cpu.set(k, c);
  }
  const main = [...cpu.entries()]
    .filter(([k]) => names.get(k) === 'CrRendererMain')
    .sort((a, b) => b[1].cpu - a[1].cpu)[0];
  const pid = main?.[0].split(':')[0];
  const sum = (match: (name: string) => boolean) =>
    [...cpu.entries()]
      .filter(([k]) => k.split(':')[0] === pid && match(names.get(k) ?? ''))
      .reduce((a, [, v]) => a + v.cpu, 0);
  const perFrame = (us: number) => us / 1000 / Math.max(1, frames);
  return {
    mainCpuMsPerFrame: perFrame(main?.[1].cpu ?? Number.NaN),
    mainWallMsPerFrame: perFrame(main?.[1].wall ?? Number.NaN),
    otherThreadsCpuMsPerFrame: perFrame(sum((n) => n !== 'CrRendererMain')),
  };
}

interface ScrollMeasure {
  scroll: ScrollRun;
  frames: Summary;
  missedVsync: number;
  over50: number;
  cpu: ReturnType<typeof threadCpu>;
  mainThread: MainThread;
}

/**
 * One scroll of the grid, with the page's main-thread metrics around it and a trace of top-level
 * tasks for thread CPU time: frame times are wall time, which a busy machine stretches; CPU time
 * per frame is what the console itself costs.
 */
async function measureScroll(
  page: Page,
  browser: Browser,
  cdp: CDPSession,
  o: Parameters<typeof scrollScript>[0],
): Promise<ScrollMeasure> {
  const m0 = await mainThread(cdp);
  await browser.startTracing(page, { categories: ['toplevel'] });
  const scroll = await page.evaluate<ScrollRun>(scrollScript(o));
  const cpu = threadCpu(await browser.stopTracing(), scroll.deltas.length);
  const d = scroll.deltas;
  return {
    scroll,
    frames: summarize(d),
    missedVsync: d.filter((x) => x >= MISSED_VSYNC_MS).length,
    over50: d.filter((x) => x > 50).length,
    cpu,
    mainThread: diffMainThread(m0, await mainThread(cdp)),
  };
}

const goal = (ok: boolean) => (ok ? 'MET' : 'MISSED');

/** 100,000 deterministic rows (mulberry32 seed 6): names, e-mails and card numbers to mask. */
async function seedGrid(admin: pg.Client): Promise<void> {
  await admin.query(`create table bench_grid (
    id int primary key, full_name text not null, email text not null, card_number text not null,
    country char(2) not null, amount numeric(12,2) not null, status text not null, created_at timestamptz not null)`);
  const rnd = mulberry32(6);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const digits = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += String(Math.floor(rnd() * 10));
    return s;
  };
  const FIRST = ['Alice', 'Bruno', 'Chiara', 'Dmitri', 'Emma', 'Farid', 'Grace', 'Hiroshi', 'Ingrid'];
  const LAST = ['Andersen', 'Becker', 'Costa', 'Dubois', 'Eriksson', 'Fischer', 'Haddad', 'Novak'];
  const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'NL', 'SE', 'ES', 'IT', 'PL', 'JP'];
  const STATUS = ['active', 'pending', 'suspended', 'closed'];
  const base = Date.UTC(2024, 0, 1);
  for (let from = 1; from <= GRID_ROWS; from += 10_000) {
    const cols: unknown[][] = Array.from({ length: 8 }, () => []);
    for (let id = from; id < from + 10_000; id++) {
      const first = pick(FIRST);
      const last = pick(LAST);
      const row = [
        id,
        `${first} ${last}`,
        `${first}.${last}${id}@example.com`.toLowerCase(),
        withLuhn(`4111${digits(11)}`),
        pick(COUNTRIES),
        `${Math.floor(rnd() * 100_000)}.${digits(2)}`,
        pick(STATUS),
        new Date(base + Math.floor(rnd() * 365 * 86_400_000)).toISOString(),
      ];
      for (let i = 0; i < row.length; i++) cols[i]!.push(row[i]);
    }
    await admin.query(
      `insert into bench_grid select * from unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[],
         $6::numeric[], $7::text[], $8::timestamptz[])`,
      cols,
    );
  }
  await admin.query('analyze bench_grid');
}

// ---------- the phases ----------

/**
 * Resolves when the page expression `cond` is true, checked every 10 ms. (Not waitForFunction:
 * the console's strict CSP forbids the eval it uses; page.evaluate runs through CDP.)
 */
async function waitIn(page: Page, cond: string, timeoutMs: number): Promise<void> {
  const ok = await page.evaluate<boolean>(`new Promise((resolve) => {
    const until = performance.now() + ${timeoutMs};
    const tick = () => (${cond}) ? resolve(true) : performance.now() > until ? resolve(false) : setTimeout(tick, 10);
    tick();
  })`);
  if (!ok) throw new Error(`page: ${cond} not true within ${timeoutMs} ms`);
}

async function firstPaint(page: Page): Promise<PaintSample> {
  await waitIn(page, 'window.__bench && window.__bench.rowPainted !== null', 60_000);
  return page.evaluate<PaintSample>(PAINT_TIMES);
}

async function typeQueries(page: Page, all: TargetView[]) {
  const input = page.locator('input[type="search"]');
  await input.click();
  const typed: Array<KeySample & { query: string }> = [];
  const cleared: KeySample[] = [];
  let n = 0;
  const press = async (key: string, want: Expectation): Promise<KeySample> => {
    await page.evaluate(`window.__bench.expect = ${JSON.stringify(want)}`);
    await page.keyboard.press(key);
    n++;
    await waitIn(page, `window.__bench.keys.length >= ${n}`, 30_000);
    const s = await page.evaluate<KeySample>(`window.__bench.keys[${n - 1}]`);
    if (s.error) throw new Error(`keystroke ${JSON.stringify(key)}: ${s.error}`);
    if (process.env.SALLYPORT_BENCH_VERBOSE === '1') log(`  ${JSON.stringify(key)}: ${fmt(s.ms, 1)} ms`);
    await sleep(KEY_PAUSE_MS);
    return s;
  };
  for (const q of QUERIES) {
    for (let i = 1; i <= q.length; i++) {
      const ch = q[i - 1]!;
      const s = await press(ch === ' ' ? 'Space' : ch, expectationFor(all, q.slice(0, i)));
      typed.push({ ...s, query: q.slice(0, i) });
    }
    await input.selectText();
    cleared.push(await press('Backspace', expectationFor(all, '')));
  }
  const events = await page.evaluate<Array<{ duration: number }>>('window.__bench.events');
  return { typed, cleared, eventTimingKeydownOver16ms: events };
}

async function openSqlTab(page: Page): Promise<Locator> {
  await page.locator('.tabstrip-new').click();
  await page.locator(`.new-session [data-target-id="${GRID_DB}"]`).click();
  const panel = page.locator('.workspace-tab:not([hidden])');
  await panel.locator('.session-sql .conn-ready').waitFor({ timeout: 30_000 });
  await panel.locator('.monaco-editor').waitFor();
  return panel;
}

// ---------- main ----------

async function main() {
  hardDeadline(10 * 60_000, 'bench:ui');
  const started = performance.now();
  let pgServer: RunningPostgres | undefined;
  let t: TestGateway | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let problems: PageProblem[] = [];
  try {
    const consoleDir = buildConsole();
    const { startPostgres } = await import('@sallyport/gateway-server/devstack');
    log(`starting PostgreSQL, Chromium and a gateway with ${fmtInt(TARGETS)} targets`);
    [pgServer, browser] = await Promise.all([startPostgres(), launchBrowser()]);
    const admin = new pg.Client({
      host: pgServer.host,
      port: pgServer.port,
      user: pgServer.user,
      password: pgServer.password,
      database: pgServer.database,
    });
    await admin.connect();
    const seeding = seedGrid(admin).finally(() => admin.end());
    seeding.catch(() => {}); // awaited below; a failure of the gateway's start must not leave it unhandled
    const targets: TargetInput[] = [
      ...manyTargets(TARGETS),
      {
        id: GRID_DB,
        kind: 'postgres',
        name: 'Grid database',
        host: pgServer.host,
        port: pgServer.port,
        user: pgServer.user,
        database: pgServer.database,
        tls: 'disable',
        credential: { password: pgServer.password },
        labels: { env: 'bench', team: 'bench' },
      },
    ];
    const g0 = performance.now();
    const { startTestGateway } = await import('@sallyport/gateway-server/rig');
    t = await startTestGateway({
      consoleDir,
      config: {
        targets,
        // The gateway sends at most 10,000 rows per statement by default; the grid gets all 100,000.
        guardrails: { sql: { maxRows: GRID_ROWS } },
        access: {
          rules: [
            {
              name: 'developers-dev',
              requesters: { groups: ['developers'] },
              targets: { labels: { env: 'dev' } },
              levels: ['shell', 'read'],
              maxDuration: '4h',
              approval: 'auto',
            },
            ...(['staging', 'prod'] as const).map((env) => ({
              name: `developers-${env}`,
              requesters: { groups: ['developers'] },
              targets: { labels: { env } },
              levels: ['shell' as const, 'read' as const],
              maxDuration: '2h',
              approval: { approvers: { groups: ['approvers'] }, count: 1 },
            })),
            {
              name: 'bench-grid',
              requesters: { groups: ['developers'] },
              targets: { ids: [GRID_DB] },
              levels: ['read'],
              maxDuration: '4h',
              approval: 'auto',
            },
          ],
        },
      },
    });
    const gatewayStartMs = performance.now() - g0;
    await seeding;
    const alice = t.client(await t.token('alice'));
    const grant = await alice.requestAccess({
      targetId: GRID_DB,
      level: 'read',
      duration: '1h',
      reason: REASON,
    });
    if (grant.outcome !== 'granted') throw new Error(`expected an automatic grant, got ${grant.outcome}`);
    // Varied access states in the list: a few active grants (dev) and pending requests (prod).
    const listed = await alice.targets();
    for (const env of ['dev', 'prod']) {
      for (const x of listed.filter((x) => x.labels.env === env && x.kind === 'ssh').slice(0, 10)) {
        await alice.requestAccess({ targetId: x.id, level: 'shell', duration: '1h', reason: REASON });
      }
    }
    const all = await alice.targets();
    if (all.length !== TARGETS + 1) throw new Error(`the gateway lists ${all.length} targets`);

    const context = await newUserContext(browser);
    await context.addInitScript(PROBE);
    page = await context.newPage();
    // The machines are shared and noisy: generous waits (nothing here is timed by them).
    page.setDefaultTimeout(120_000);
    problems = watchPage(page);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');

    // ---------- 1. first paint of the list ----------
    log(`first paint of the list: sign-in, then ${RELOADS} reloads`);
    await signInThroughProvider(page, t.url, 'alice');
    const afterSignIn = await firstPaint(page);
    if (process.env.SALLYPORT_BENCH_VERBOSE === '1') log(`  after sign-in: ${JSON.stringify(afterSignIn)}`);
    const reloads: PaintSample[] = [];
    for (let i = 0; i < RELOADS; i++) {
      await page.reload();
      reloads.push(await firstPaint(page));
      if (process.env.SALLYPORT_BENCH_VERBOSE === '1') log(`  reload: ${JSON.stringify(reloads.at(-1))}`);
    }
    await page.getByTestId('target-count').waitFor();
    const listDom = await heapUsed(cdp);
    const countText = await page.getByTestId('target-count').textContent();
    if (countText !== `${all.length} targets`) throw new Error(`the console shows "${countText}"`);

    // ---------- 2. filter per keystroke ----------
    log(`filter per keystroke: ${QUERIES.map((q) => JSON.stringify(q)).join(', ')}`);
    const filter = await typeQueries(page, all);

    // ---------- 3. the SQL grid ----------
    log(`SQL grid: ${fmtInt(GRID_ROWS)} rows into one result, then the scroll`);
    const panel = await openSqlTab(page);
    const heapBefore = await heapUsed(cdp);
    const r0 = performance.now();
    const status = await runSql(page, panel, GRID_SQL, 180_000);
    const runMs = performance.now() - r0;
    if (status !== 'complete') throw new Error(`the run ended with status ${status}`);
    const grid = panel.getByTestId('result-grid');
    const held = await grid.getAttribute('data-rows');
    if (held !== String(GRID_ROWS)) throw new Error(`the grid holds ${held} rows`);
    if ((await panel.getByTestId('sql-truncated').count()) > 0) throw new Error('the result was truncated');
    const heapHeld = await heapUsed(cdp);
    if (profiling) await cdp.send('Profiler.enable').then(() => cdp.send('Profiler.start'));
    const fast = await measureScroll(page, browser, cdp, {
      fromTop: 0,
      stepJs: `${SCROLL_STEP} * el.clientHeight`,
      rows: GRID_ROWS,
      maxFrames: 100_000,
    });
    if (fast.scroll.lastRow !== GRID_ROWS)
      throw new Error(`the scroll stopped at row ${fast.scroll.lastRow}`);
    const lastId = await grid.locator('tbody tr').last().locator('td').first().textContent();
    if (lastId !== String(GRID_ROWS)) throw new Error(`the last row shows id ${lastId}`);
    const wheel = await measureScroll(page, browser, cdp, {
      fromTop: (GRID_ROWS / 2) * ROW_PX,
      stepJs: String(WHEEL_PX),
      rows: GRID_ROWS,
      maxFrames: WHEEL_FRAMES,
    });
    if (profiling) topSelfTime((await cdp.send('Profiler.stop')).profile);
    const heapAfter = await heapUsed(cdp);
    const pageProblems = problems.filter(
      (p) => !(p.kind === 'console' && p.url === `${t?.url}/api/me` && p.text.includes('status of 401')),
    );

    // ---------- report ----------
    const paint = summarize(reloads.map((r) => r.rowPainted));
    const part = (k: keyof PaintSample) => summarize(reloads.map((r) => r[k]));
    const keys = summarize(filter.typed.map((k) => k.ms));
    const clears = summarize(filter.cleared.map((k) => k.ms));
    const perQuery = QUERIES.map((q) => ({
      query: q,
      ms: summarize(
        filter.typed.filter((k) => q.startsWith(k.query) && k.query.length <= q.length).map((k) => k.ms),
      ),
    }));

    console.log('');
    console.log(`Sallyport console benchmark — ${machineLine()}`);
    console.log(
      `Chromium ${browser.version()} headless (software rendering), 1280×800; gateway in-process with ${fmtInt(all.length)} targets (started in ${fmt(gatewayStartMs / 1000, 1)} s); no direct path for a UI, so absolute figures against the goals`,
    );
    console.log('');
    console.log(
      `1. Time to first paint of the targets list (${fmtInt(all.length)} targets), ms from navigation start`,
    );
    printTable(
      ['load', 'DOMContentLoaded', '/api/targets done', 'first row in DOM', 'first row painted', 'goal'],
      [
        [
          'after sign-in (first load)',
          fmt(afterSignIn.domContentLoaded, 0),
          fmt(afterSignIn.targetsResponseEnd, 0),
          fmt(afterSignIn.rowInDom, 0),
          fmt(afterSignIn.rowPainted, 0),
          '',
        ],
        [
          `reload, p50 of ${reloads.length}`,
          fmt(part('domContentLoaded').p50, 0),
          fmt(part('targetsResponseEnd').p50, 0),
          fmt(part('rowInDom').p50, 0),
          fmt(paint.p50, 0),
          `≤ ${GOAL_PAINT_MS} ${goal(paint.p50 <= GOAL_PAINT_MS)}`,
        ],
        [
          `reload, max of ${reloads.length}`,
          fmt(part('domContentLoaded').max, 0),
          fmt(part('targetsResponseEnd').max, 0),
          fmt(part('rowInDom').max, 0),
          fmt(paint.max, 0),
          `≤ ${GOAL_PAINT_MS} ${goal(paint.max <= GOAL_PAINT_MS)}`,
        ],
      ],
    );
    console.log(
      `list shown: DOM nodes ${fmtInt(listDom.nodes)}, JS heap ${mb(listDom.jsHeapUsed)} (after GC)`,
    );
    console.log('');
    console.log(
      `2. Filter time per keystroke, keydown to the end of the frame showing the filtered list (${KEY_PAUSE_MS} ms between keystrokes)`,
    );
    const keyRow = (name: string, s: Summary, goalText: string) => [
      name,
      fmtInt(s.n),
      fmt(s.p50, 1),
      fmt(s.p99, 1),
      fmt(s.max, 1),
      goalText,
    ];
    printTable(
      ['keystrokes', 'n', 'p50 ms', 'p99 ms', 'max ms', 'goal'],
      [
        ...perQuery.map((q) => keyRow(`typing ${JSON.stringify(q.query)}`, q.ms, '')),
        keyRow('all typed keystrokes', keys, `≤ ${GOAL_KEY_MS} ${goal(keys.p99 <= GOAL_KEY_MS)}`),
        keyRow(
          `clearing (back to all ${fmtInt(all.length)})`,
          clears,
          `≤ ${GOAL_KEY_MS} ${goal(clears.max <= GOAL_KEY_MS)}`,
        ),
      ],
    );
    console.log('');
    const viewport = fast.scroll.viewport;
    console.log(
      `3. SQL grid: one result of ${fmtInt(GRID_ROWS)} rows × 8 columns (e-mails and cards masked), viewport ${viewport} px (${Math.floor(viewport / ROW_PX)} rows), scrollTop moved every animation frame`,
    );
    const scrollRow = (name: string, m: ScrollMeasure) => [
      name,
      fmtInt(m.frames.n),
      fmt(m.frames.p50, 1),
      fmt(m.frames.p99, 1),
      fmt(m.frames.max, 1),
      `${fmtInt(m.missedVsync)} (${fmt((100 * m.missedVsync) / Math.max(1, m.frames.n), 1)}%)`,
      fmtInt(m.over50),
      `${fmt(m.scroll.ms / 1000, 1)} s`,
      fmt(m.cpu.mainCpuMsPerFrame, 1),
      `p99 < ${MISSED_VSYNC_MS}, none > 50: ${goal(m.frames.p99 < MISSED_VSYNC_MS && m.over50 === 0)}; CPU ≤ 16.7: ${goal(m.cpu.mainCpuMsPerFrame <= 16.7)}`,
    ];
    printTable(
      [
        'scroll',
        'frames',
        'p50 ms',
        'p99 ms',
        'max ms',
        `≥ ${MISSED_VSYNC_MS} ms`,
        '> 50 ms',
        'time',
        'main CPU/frame ms',
        'goal',
      ],
      [
        scrollRow(`fast: ${SCROLL_STEP} viewports/frame, row 1 → ${fmtInt(GRID_ROWS)}`, fast),
        scrollRow(`wheel-like: ${WHEEL_PX} px/frame, ${fmtInt(wheel.frames.n)} frames mid-result`, wheel),
      ],
    );
    console.log(
      `the run (${fmtInt(GRID_ROWS)} rows through the gateway into the tab): ${fmt(runMs / 1000, 1)} s; rows in the DOM while scrolling: ${fast.scroll.rowsInDom}`,
    );
    for (const [name, m] of [
      ['fast', fast],
      ['wheel-like', wheel],
    ] as const) {
      const mt = m.mainThread;
      const per = (sec: number) => fmt((1000 * sec) / Math.max(1, m.frames.n), 1);
      console.log(
        `${name}, main thread per frame: ${per(mt.TaskDuration)} ms of tasks (CPU ${fmt(m.cpu.mainCpuMsPerFrame, 1)} ms) — script ${per(mt.ScriptDuration)}, style ${per(mt.RecalcStyleDuration)}, layout ${per(mt.LayoutDuration)}, the rest (paint, compositing, GC) ${per(mt.TaskDuration - mt.ScriptDuration - mt.RecalcStyleDuration - mt.LayoutDuration)}; other renderer threads CPU ${fmt(m.cpu.otherThreadsCpuMsPerFrame, 1)} ms`,
      );
    }
    console.log(
      `JS heap (after GC): ${mb(heapBefore.jsHeapUsed)} before the run, ${mb(heapHeld.jsHeapUsed)} holding ${fmtInt(GRID_ROWS)} rows, ${mb(heapAfter.jsHeapUsed)} after the scroll`,
    );
    if (pageProblems.length) console.log(`page problems: ${JSON.stringify(pageProblems.slice(0, 5))}`);

    const at = new Date().toISOString();
    const file = writeResult('ui', {
      at,
      machine: machineLine(),
      chromium: browser.version(),
      targets: all.length,
      gatewayStartMs,
      firstPaint: { afterSignIn, reloads, rowPainted: paint, goalMs: GOAL_PAINT_MS },
      listDom,
      filter: {
        queries: QUERIES,
        pauseMs: KEY_PAUSE_MS,
        typed: keys,
        cleared: clears,
        perQuery,
        samples: filter.typed,
        clearSamples: filter.cleared,
        eventTimingKeydownOver16ms: filter.eventTimingKeydownOver16ms,
        goalMs: GOAL_KEY_MS,
      },
      sqlGrid: {
        rows: GRID_ROWS,
        sql: GRID_SQL,
        viewportPx: viewport,
        scrollHeightPx: fast.scroll.scrollHeight,
        runMs,
        fast: { stepViewports: SCROLL_STEP, ...fast, scroll: { ...fast.scroll, deltas: undefined } },
        wheel: { stepPx: WHEEL_PX, ...wheel, scroll: { ...wheel.scroll, deltas: undefined } },
        heap: { before: heapBefore, holding: heapHeld, after: heapAfter },
      },
      pageProblems,
      totalSeconds: (performance.now() - started) / 1000,
    });
    console.log('');
    console.log(`written to ${file} (${fmt((performance.now() - started) / 1000, 0)} s in all)`);
  } catch (err) {
    // What the console showed when it went wrong (bench/results is where the runs are kept).
    const shot = new URL(
      `./results/ui-failure-${new Date().toISOString().replace(/[:.]/g, '-')}.png`,
      import.meta.url,
    );
    await page
      ?.screenshot({ path: fileURLToPath(shot) })
      .then(() => log(`screenshot of the failure: ${fileURLToPath(shot)}`))
      .catch(() => {});
    if (problems.length) log(`page problems: ${JSON.stringify(problems.slice(0, 5), null, 2)}`);
    throw err;
  } finally {
    await browser?.close().catch(() => {});
    await t?.stop().catch(() => {});
    await pgServer?.stop().catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
