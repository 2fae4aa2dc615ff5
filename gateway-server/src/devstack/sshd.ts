// A real OpenSSH server (the OS `sshd`) on a random loopback port, for demos and integration tests.
//
// Everything lives in one mkdtemp dir (keys, sshd_config, authorized_keys, pid file); the system's
// /etc/ssh is never read or written (sshd runs with `-f <dir>/sshd_config`). The only system path
// touched is /run/sshd, sshd's privilege-separation dir, created (0755) if missing.
// Login user: the current user (root here). Public-key auth only.
//
// Orphans: a process 'exit' handler sends SIGTERM synchronously and removes the dir, and a detached
// watchdog (ports.ts spawnReaper) does the same if this Node process dies without running handlers.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, mkdirSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, onProcessExit, settlesWithin, sleep, spawnReaper } from './ports';

const execFileAsync = promisify(execFile);

export interface RunningSshd {
  host: string;
  port: number;
  user: string;
  /** OpenSSH private key text for `user`, ed25519, no passphrase (unless `password` was given). */
  clientPrivateKey: string;
  /** 'ssh-ed25519 AAAA…' host public key line, for pinning. */
  hostPublicKey: string;
  /** The SHA256 fingerprint like 'SHA256:…'. */
  hostKeyFingerprint: string;
  dir: string;
  stop(): Promise<void>;
}

export interface StartSshdOptions {
  log?: (line: string) => void;
  /**
   * Passphrase for the generated client key (ssh2: `passphrase`). sshd password login is not
   * offered: with `UsePAM no` it would check the real account password in /etc/shadow, which a
   * dev stack must not change.
   */
  password?: string;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 5;
const SSHD_CANDIDATES = [
  '/usr/sbin/sshd',
  '/usr/local/sbin/sshd',
  '/sbin/sshd',
  '/usr/bin/sshd',
  '/opt/homebrew/sbin/sshd',
];

/** Absolute path of sshd (/usr/sbin/sshd etc., then $PATH), or null. */
export function findSshd(): string | null {
  const fromPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d.startsWith('/'))
    .map((d) => join(d, 'sshd'));
  for (const candidate of [...SSHD_CANDIDATES, ...fromPath]) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return null;
}

export async function startSshd(opts: StartSshdOptions = {}): Promise<RunningSshd> {
  const log = opts.log ?? (() => {});
  const sshd = findSshd();
  if (!sshd) throw new Error('startSshd: no sshd binary found (install openssh-server)');
  const user = userInfo().username;
  const dir = await mkdtemp(join(tmpdir(), 'sallyport-sshd-'));
  const configPath = join(dir, 'sshd_config');
  const pidFile = join(dir, 'sshd.pid');
  const reaper = spawnReaper({ pidFile, cmdlineMatch: configPath, signal: 'TERM', removeDir: dir });

  let child: ChildProcess | undefined;
  let unregisterExit = () => {};
  try {
    ensurePrivsepDir();
    const hostKey = join(dir, 'ssh_host_ed25519_key');
    const clientKey = join(dir, 'client_ed25519');
    await Promise.all([
      keygen(hostKey, '', 'sallyport-devstack-host'),
      keygen(clientKey, opts.password ?? '', user),
    ]);
    const [hostPub, clientPub, clientPrivateKey] = await Promise.all([
      readFile(`${hostKey}.pub`, 'utf8'),
      readFile(`${clientKey}.pub`, 'utf8'),
      readFile(clientKey, 'utf8'),
    ]);
    await writeFile(join(dir, 'authorized_keys'), clientPub, { mode: 0o600 });
    const [keyType, keyBase64] = hostPub.trim().split(/\s+/);
    if (!keyType || !keyBase64) throw new Error(`startSshd: unexpected host key ${hostPub}`);
    const hostPublicKey = `${keyType} ${keyBase64}`;
    const hostKeyFingerprint = `SHA256:${createHash('sha256')
      .update(Buffer.from(keyBase64, 'base64'))
      .digest('base64')
      .replace(/=+$/, '')}`;
    const extraOptions = (await supportsOption(sshd, dir, hostKey, 'PerSourcePenalties=no'))
      ? ['PerSourcePenalties no'] // OpenSSH >= 9.8 would otherwise block 127.0.0.1 after failed logins
      : [];

    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort(HOST);
      await writeFile(configPath, sshdConfig({ dir, port, hostKey, extraOptions }), { mode: 0o600 });
      const stderr: string[] = [];
      const proc = spawn(sshd, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = proc;
      let buffered = '';
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (chunk: string) => {
        buffered += chunk;
        const parts = buffered.split('\n');
        buffered = parts.pop() ?? '';
        for (const raw of parts) {
          const line = raw.trimEnd();
          if (!line) continue;
          if (stderr.length < 200) stderr.push(line);
          log(line);
        }
      });
      const exited = new Promise<string>((resolve) => {
        proc.once('exit', (code, signal) => resolve(`sshd exited early (code ${code}, signal ${signal})`));
        proc.once('error', (err) => resolve(`could not run ${sshd}: ${err.message}`));
      });
      const outcome = await Promise.race([
        waitForSshBanner(HOST, port, READY_TIMEOUT_MS).then(
          () => null,
          (err: Error) => err.message,
        ),
        exited,
      ]);
      if (outcome === null) break;
      await killProcess(proc);
      child = undefined;
      const output = [...stderr, buffered].join('\n');
      if (attempt < PORT_ATTEMPTS && /address already in use|cannot bind any address/i.test(output)) {
        log(`port ${port} was taken, retrying`);
        continue;
      }
      throw new Error(`startSshd: ${outcome}\n--- sshd stderr ---\n${output}`);
    }

    const running = child;
    if (!running) throw new Error('startSshd: unreachable');
    unregisterExit = onProcessExit(() => {
      if (running.exitCode === null && running.signalCode === null) running.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    });

    let stopping: Promise<void> | undefined;
    return {
      host: HOST,
      port,
      user,
      clientPrivateKey,
      hostPublicKey,
      hostKeyFingerprint,
      dir,
      stop() {
        stopping ??= (async () => {
          unregisterExit();
          await killProcess(running);
          await rm(dir, { recursive: true, force: true });
          reaper.cancel();
        })();
        return stopping;
      },
    };
  } catch (err) {
    unregisterExit();
    if (child) await killProcess(child);
    await rm(dir, { recursive: true, force: true });
    reaper.cancel();
    throw err;
  }
}

function sshdConfig(o: { dir: string; port: number; hostKey: string; extraOptions: string[] }): string {
  return [
    '# Generated by sallyport devstack (gateway-server/src/devstack/sshd.ts). Throwaway.',
    `ListenAddress ${HOST}`,
    `Port ${o.port}`,
    `HostKey ${o.hostKey}`,
    `AuthorizedKeysFile ${join(o.dir, 'authorized_keys')}`,
    `PidFile ${join(o.dir, 'sshd.pid')}`,
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'PrintMotd no',
    'UseDNS no',
    'Subsystem sftp internal-sftp',
    'LogLevel VERBOSE',
    ...o.extraOptions,
    '',
  ].join('\n');
}

async function keygen(file: string, passphrase: string, comment: string): Promise<void> {
  await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', comment, '-f', file]);
}

/** `sshd -t` with an extra `-o` option: true when this sshd version accepts it. */
async function supportsOption(sshd: string, dir: string, hostKey: string, option: string): Promise<boolean> {
  const probe = join(dir, 'probe_config');
  await writeFile(probe, `HostKey ${hostKey}\nPidFile ${join(dir, 'probe.pid')}\n`);
  try {
    await execFileAsync(sshd, ['-t', '-f', probe, '-o', option]);
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe, { force: true });
  }
}

/** sshd (as root) refuses to start without its privilege-separation dir. */
function ensurePrivsepDir(): void {
  if (process.getuid?.() !== 0) return;
  try {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  } catch {
    // sshd's own error will say what is wrong
  }
}

/** Resolves once host:port accepts TCP and sends an `SSH-2.0` identification line. */
async function waitForSshBanner(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    const banner = await new Promise<string | null>((resolve) => {
      const socket = createConnection({ host, port });
      let data = '';
      const done = (value: string | null) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(value);
      };
      const timer = setTimeout(() => done(null), 2000);
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        data += chunk;
        if (data.includes('\n')) done(data);
      });
      socket.once('error', (err) => {
        last = err.message;
        done(null);
      });
      socket.once('close', () => done(data || null));
    });
    if (banner?.startsWith('SSH-2.0')) return;
    if (banner) last = `unexpected banner ${JSON.stringify(banner.slice(0, 80))}`;
    await sleep(50);
  }
  throw new Error(`no SSH banner on ${host}:${port} after ${timeoutMs} ms (${last})`);
}

/** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; resolves once the process has exited. */
async function killProcess(proc: ChildProcess): Promise<void> {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const stopped = await settlesWithin(exited, STOP_TIMEOUT_MS);
  if (!stopped) {
    proc.kill('SIGKILL');
    await exited;
  }
}
