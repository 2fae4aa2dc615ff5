/**
 * Shared helpers of the benchmarks in bench/: statistics, tables, result files, a forced GC,
 * deterministic test data, an in-process CPU profiler, and a "driver" child process.
 *
 * The driver: a benchmark forks itself (same file, SALLYPORT_BENCH_DRIVER=1) to play the user's
 * machine. Every client — the direct one (ssh2, pg) and the one through the gateway (WebSocket
 * channels) — runs there, so the benchmark process holds only the gateway (its memory and CPU are
 * the gateway's), and the direct and gateway figures come from the same client process.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// ---------- statistics ----------

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) =>
    s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
  return {
    n: s.length,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: s.at(-1) ?? Number.NaN,
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

// ---------- formatting ----------

export const fmtInt = (n: number): string =>
  Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
export const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
export const ratio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '—');
export const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Prints an aligned table: first column left-aligned, the others right-aligned. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const header = line(headers);
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const r of rows) console.log(line(r));
}

/** One line about the machine, for the top of a report (the machines are noisy). */
export function machineLine(): string {
  const c = cpus();
  return `${c.length} CPUs (${c[0]?.model ?? 'unknown'}), Node ${process.version}, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
}

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Writes bench/results/<name>-<timestamp>.json and returns its path. */
export function writeResult(name: string, result: { at: string } & Record<string, unknown>): string {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${name}-${result.at.replace(/[:.]/g, '-')}.json`, dir);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return fileURLToPath(file);
}

// ---------- memory ----------

setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

/** Full garbage collections (no --expose-gc needed), then memoryUsage(). */
export async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    fullGc();
    await sleep(20);
  }
  return process.memoryUsage();
}

// ---------- time ----------

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects after `ms` with a message naming `what` (the timer never holds the process open). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends the process with code 2 after `ms`, whatever is still running (every run stops by itself). */
export function hardDeadline(ms: number, what: string): void {
  setTimeout(() => {
    log(`${what}: hard deadline of ${Math.round(ms / 1000)} s reached, exiting`);
    process.exit(2);
  }, ms).unref();
}

/**
 * CPU seconds used so far by this process's main thread (Linux /proc; undefined elsewhere). With
 * process.cpuUsage() it splits the gateway's CPU into the event loop and everything else (the
 * store's worker thread, libuv's pool, the garbage collector's helpers).
 */
export function mainThreadCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // Fields after the command name: state is field 3, utime 14 and stime 15 (in clock ticks, 100/s).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return Number.isFinite(ticks) ? ticks / 100 : undefined;
  } catch {
    return undefined;
  }
}

/** The whole machine's CPU time so far (/proc/stat, clock ticks): busy (not idle, not I/O wait) and all. */
export interface MachineCpu {
  busy: number;
  total: number;
}

export function machineCpu(): MachineCpu | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (ticks.length < 5 || ticks.some((n) => !Number.isFinite(n))) return undefined;
    const total = ticks.reduce((a, b) => a + b, 0);
    // Idle, I/O wait and steal (time the hypervisor gave to someone else) are not this machine's work.
    return { busy: total - ticks[3]! - ticks[4]! - (ticks[7] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** How many of the machine's CPUs were busy, on average, between two readings. */
export function busyCores(from: MachineCpu | undefined, to: MachineCpu | undefined): number | undefined {
  if (!from || !to || to.total <= from.total) return undefined;
  return ((to.busy - from.busy) / (to.total - from.total)) * cpus().length;
}

/** Runs `fn` and says how many CPUs the whole machine kept busy meanwhile. */
export async function withMachineCpu<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; busyCores: number | undefined }> {
  const from = machineCpu();
  const result = await fn();
  return { result, busyCores: busyCores(from, machineCpu()) };
}

export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${raw}: expected a positive number`);
  return n;
}

// ---------- deterministic data ----------

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `body` followed by its Luhn check digit. */
export function withLuhn(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = body.charCodeAt(body.length - 1 - i) - 48;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

// ---------- CPU profile of the benchmark process (SALLYPORT_BENCH_PROFILE=1) ----------

export const profiling = process.env.SALLYPORT_BENCH_PROFILE === '1';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/**
 * With SALLYPORT_BENCH_PROFILE=1: runs `fn` under the V8 CPU profiler of this process (the
 * gateway's), writes bench/results/<name>-<ts>.cpuprofile (open it in Chrome DevTools) and prints
 * the functions with the most self time. Without it: just runs `fn`.
 */
export async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  if (!profiling) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  let result: T;
  try {
    result = await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    const dir = new URL('./results/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    const file = new URL(`${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`, dir);
    writeFileSync(file, JSON.stringify(profile));
    const nodes = profile.nodes as ProfileNode[];
    const total = nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0) || 1;
    const self = new Map<string, number>();
    for (const n of nodes) {
      const f = n.callFrame;
      const where = f.url
        ? `${f.url.replace(/^.*\/(node_modules|gateway-server)\//, '$1/')}:${f.lineNumber + 1}`
        : '';
      const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
      self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
    }
    const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20);
    log(`\nCPU profile of "${name}" (gateway process), top self time, written to ${fileURLToPath(file)}:`);
    for (const [k, v] of top) log(`  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  }
  return result;
}

// ---------- the driver child process ----------

type Handler = (args: never) => Promise<unknown>;

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export const isDriver = process.env.SALLYPORT_BENCH_DRIVER === '1';

export interface Driver {
  call<R>(cmd: string, args: unknown, timeoutMs: number): Promise<R>;
  stop(): Promise<void>;
}

/** Forks `script` (a benchmark file) as its driver: the same tsx loader, SALLYPORT_BENCH_DRIVER=1. */
export function startDriver(script: string | URL): Driver {
  const child: ChildProcess = fork(script instanceof URL ? fileURLToPath(script) : script, [], {
    env: { ...process.env, SALLYPORT_BENCH_DRIVER: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let seq = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`driver: ${m.error}`));
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const p of pending.values()) p.reject(new Error(`driver exited (code ${code}, signal ${signal})`));
      pending.clear();
      resolve();
    }),
  );
  return {
    call<R>(cmd: string, args: unknown, timeoutMs: number): Promise<R> {
      const id = ++seq;
      const reply = new Promise<R>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, cmd, args } satisfies Request);
      });
      return within(reply, timeoutMs, `driver ${cmd}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.disconnect();
      const gone = await within(exited, 10_000, 'driver exit').then(
        () => true,
        () => false,
      );
      if (!gone) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** In the driver: answers the parent's calls one at a time; exits when the parent goes away. */
export function serveDriver(handlers: Record<string, Handler>): void {
  let chain: Promise<void> = Promise.resolve();
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: Request) => {
    chain = chain.then(async () => {
      let reply: Reply;
      try {
        const h = handlers[m.cmd];
        if (!h) throw new Error(`unknown command ${m.cmd}`);
        reply = { id: m.id, ok: true, result: await h(m.args as never) };
      } catch (err) {
        reply = {
          id: m.id,
          ok: false,
          error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        };
      }
      process.send?.(reply);
    });
  });
}
