// Vitest helper: a throw-away certificate authority (made with the openssl command, as an operator
// would) and TLS on a running test PostgreSQL.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { RunningPostgres } from '../../src/devstack/postgres';
import { adminClient } from './postgres';

export interface TestPki {
  dir: string;
  /** The CA that signed `certFile`. */
  caFile: string;
  caPem: string;
  /** A second CA that signed nothing here: trusting it must not be enough. */
  otherCaFile: string;
  otherCaPem: string;
  /** Server certificate for the given names, and its key. */
  certFile: string;
  keyFile: string;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') {
      throw new Error('the openssl command is missing: install it (scripts/setup.sh --test does)');
    }
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

/** A CA, a second unrelated CA, and a server certificate with these subject alternative names. */
export function makeTestPki(altNames: { ip?: string[]; dns?: string[] }): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'sallyport-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) =>
    openssl(
      [
        'req',
        '-x509',
        ...ec,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.crt`,
        '-subj',
        `/CN=${name}`,
        '-days',
        '2',
      ],
      dir,
    );
  ca('sallyport-test-ca');
  ca('sallyport-other-ca');
  openssl(
    ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=sallyport-test-server'],
    dir,
  );
  const san = [
    ...(altNames.ip ?? []).map((ip) => `IP:${ip}`),
    ...(altNames.dns ?? []).map((d) => `DNS:${d}`),
  ];
  writeFileSync(path.join(dir, 'san.ext'), `subjectAltName=${san.join(',')}\n`);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'sallyport-test-ca.crt',
      '-CAkey',
      'sallyport-test-ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'san.ext',
    ],
    dir,
  );
  const file = (n: string) => path.join(dir, n);
  return {
    dir,
    caFile: file('sallyport-test-ca.crt'),
    caPem: readFileSync(file('sallyport-test-ca.crt'), 'utf8'),
    otherCaFile: file('sallyport-other-ca.crt'),
    otherCaPem: readFileSync(file('sallyport-other-ca.crt'), 'utf8'),
    certFile: file('server.crt'),
    keyFile: file('server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Turns TLS on in a running test PostgreSQL with this certificate (a reload, no restart) and, with
 * `only`, refuses every connection that is not TLS (pg_hba `hostssl`).
 */
export async function enableServerTls(server: RunningPostgres, pki: TestPki, opts: { only?: boolean } = {}) {
  // PostgreSQL insists its key belongs to the server's user and nobody else can read it.
  const { uid, gid } = statSync(server.dataDir);
  for (const [from, to] of [
    [pki.certFile, 'server.crt'],
    [pki.keyFile, 'server.key'],
  ] as const) {
    const dest = path.join(server.dataDir, to);
    copyFileSync(from, dest);
    chmodSync(dest, 0o600);
    if (process.getuid?.() === 0) chownSync(dest, uid, gid);
  }
  if (opts.only) {
    const hba = path.join(server.dataDir, 'pg_hba.conf');
    writeFileSync(
      hba,
      [
        'hostssl all all 127.0.0.1/32 scram-sha-256',
        'hostnossl all all 127.0.0.1/32 reject',
        'hostssl all all ::1/128 scram-sha-256',
        '',
      ].join('\n'),
    );
    if (process.getuid?.() === 0) chownSync(hba, uid, gid);
  }
  const admin = await adminClient(server);
  try {
    await admin.query('alter system set ssl = on');
    await admin.query("alter system set ssl_cert_file = 'server.crt'");
    await admin.query("alter system set ssl_key_file = 'server.key'");
    await admin.query('select pg_reload_conf()');
  } finally {
    await admin.end();
  }
  // pg_reload_conf() only signals the server: wait until new connections see the new settings.
  const attempt = async (ssl: pg.ClientConfig['ssl']) => {
    const c = new pg.Client({ ...server, ssl });
    c.on('error', () => {});
    try {
      await c.connect();
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => {});
    }
  };
  for (let i = 0; ; i++) {
    const tlsWorks = await attempt({ ca: pki.caPem });
    const plainRefused = !opts.only || !(await attempt(false));
    if (tlsWorks && plainRefused) return;
    if (i === 100) throw new Error('enableServerTls: the server did not take the TLS settings within 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}
