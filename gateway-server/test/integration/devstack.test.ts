import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Client as SshClient, utils as sshUtils } from 'ssh2';
import { describe, expect, test } from 'vitest';
import { isPortClosed } from '../../src/devstack/ports';
import { DEMO_CUSTOMER_COUNT, type RunningPostgres, startPostgres } from '../../src/devstack/postgres';
import { type RunningSshd, startSshd } from '../../src/devstack/sshd';
import { usePostgres } from '../rig/postgres';
import { hasSshd, useSshd } from '../rig/sshd';

/** Independent Luhn validation (not the generator's code). */
function passesLuhn(number: string): boolean {
  if (!/^\d{12,19}$/.test(number)) return false;
  const digits = [...number].reverse().map(Number);
  const sum = digits.reduce((acc, d, i) => acc + (i % 2 === 1 ? (d * 2 > 9 ? d * 2 - 9 : d * 2) : d), 0);
  return sum % 10 === 0;
}

async function query<T extends pg.QueryResultRow>(
  s: Pick<RunningPostgres, 'host' | 'port' | 'user' | 'password' | 'database'>,
  sql: string,
): Promise<T[]> {
  const client = new pg.Client({
    host: s.host,
    port: s.port,
    user: s.user,
    password: s.password,
    database: s.database,
  });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

function passwordFilesHolding(password: string): string[] {
  return readdirSync(tmpdir())
    .filter((n) => n.startsWith('pg-password-'))
    .filter((n) => {
      try {
        return readFileSync(join(tmpdir(), n), 'utf8').trim() === password;
      } catch {
        return false;
      }
    });
}

describe('devstack postgres', () => {
  test('starts seeded on loopback; every card passes Luhn; stop() closes the port and removes the dir', async () => {
    const started = performance.now();
    const server = await startPostgres({ seedDemo: true });
    const startMs = performance.now() - started;
    try {
      expect(server.host).toBe('127.0.0.1');
      expect(server.database).toBe('demo');
      expect(server.password.length).toBeGreaterThanOrEqual(24);
      expect(existsSync(join(server.dataDir, 'PG_VERSION'))).toBe(true);
      expect(passwordFilesHolding(server.password)).toEqual([]);

      const [count] = await query<{ n: number }>(server, 'select count(*)::int as n from customers');
      expect(count?.n).toBe(DEMO_CUSTOMER_COUNT);
      expect(DEMO_CUSTOMER_COUNT).toBeGreaterThanOrEqual(50);

      const rows = await query<{ card_number: string; email: string; country: string }>(
        server,
        'select card_number, email, country from customers order by id',
      );
      expect(rows).toHaveLength(DEMO_CUSTOMER_COUNT);
      for (const row of rows) {
        expect(passesLuhn(row.card_number), row.card_number).toBe(true);
        expect(row.email).toMatch(/^[a-z.]+\d*@example\.com$/);
        expect(row.country).toMatch(/^[A-Z]{2}$/);
      }
      const [port] = await query<{ port: number }>(server, 'select inet_server_port() as port');
      expect(port?.port).toBe(server.port);
      console.log(`postgres (initdb + start + seed) took ${Math.round(startMs)} ms`);
    } finally {
      await server.stop();
    }
    expect(await isPortClosed(server.host, server.port)).toBe(true);
    expect(existsSync(server.dataDir)).toBe(false);
    await server.stop(); // idempotent
  });

  test('seeding is deterministic: two servers hold identical rows', async () => {
    const [a, b] = await Promise.all([startPostgres({ seedDemo: true }), startPostgres({ seedDemo: true })]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.dataDir).not.toBe(b.dataDir);
      const sql = 'select id, name, email, card_number, country, created_at::text from customers order by id';
      const [rowsA, rowsB] = await Promise.all([query(a, sql), query(b, sql)]);
      expect(rowsA).toHaveLength(DEMO_CUSTOMER_COUNT);
      expect(rowsB).toEqual(rowsA);
      // Each answers on its own port.
      const [pa, pb] = await Promise.all([
        query<{ port: number }>(a, 'select inet_server_port() as port'),
        query<{ port: number }>(b, 'select inet_server_port() as port'),
      ]);
      expect(pa[0]?.port).toBe(a.port);
      expect(pb[0]?.port).toBe(b.port);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(await isPortClosed(a.host, a.port)).toBe(true);
    expect(await isPortClosed(b.host, b.port)).toBe(true);
  });

  test('a caller-owned dataDir is kept and reused with the same password', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'sallyport-pgkeep-'));
    const dataDir = join(parent, 'data');
    try {
      // As root, postgres runs as the `postgres` user and must traverse the parent (mkdtemp is 0700).
      if (process.getuid?.() === 0) {
        await expect(startPostgres({ dataDir })).rejects.toThrow(/not searchable by the postgres user/);
      }
      await chmod(parent, 0o755);

      const first = await startPostgres({ dataDir, seedDemo: true });
      await query(
        first,
        "insert into customers (name, email, card_number, country) values ('Zed', 'zed@example.com', '4111111111111111', 'NZ')",
      );
      await first.stop();
      expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);

      const second = await startPostgres({ dataDir, seedDemo: true });
      try {
        expect(second.password).toBe(first.password);
        const [count] = await query<{ n: number }>(second, 'select count(*)::int as n from customers');
        expect(count?.n).toBe(DEMO_CUSTOMER_COUNT + 1);
      } finally {
        await second.stop();
      }
      expect(existsSync(dataDir)).toBe(true);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  describe('usePostgres rig', () => {
    const pgFixture = usePostgres();
    test('exposes a running seeded server and a URL', async () => {
      const client = new pg.Client({ connectionString: pgFixture.url() });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: number }>('select count(*)::int as n from customers');
        expect(rows[0]?.n).toBe(DEMO_CUSTOMER_COUNT);
      } finally {
        await client.end();
      }
    });
  });
});

interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | null;
  hostKeyMatched: boolean;
}

function sshExec(
  s: RunningSshd,
  privateKey: string,
  command: string,
  pinned = s.hostPublicKey,
): Promise<ExecResult> {
  const pinnedBlob = Buffer.from(pinned.split(' ')[1] ?? '', 'base64');
  let hostKeyMatched = false;
  return new Promise((resolve, reject) => {
    const conn = new SshClient();
    conn
      .on('ready', () => {
        conn.exec(command, (err, stream) => {
          if (err) {
            conn.end();
            reject(err);
            return;
          }
          let stdout = '';
          let stderr = '';
          let code: number | null = null;
          stream.on('data', (d: Buffer) => {
            stdout += d.toString('utf8');
          });
          stream.stderr.on('data', (d: Buffer) => {
            stderr += d.toString('utf8');
          });
          stream.on('exit', (c: number | null) => {
            code = c;
          });
          stream.on('close', () => {
            conn.end();
            resolve({ stdout, stderr, code, hostKeyMatched });
          });
        });
      })
      .on('error', reject)
      .connect({
        host: s.host,
        port: s.port,
        username: s.user,
        privateKey,
        readyTimeout: 10_000,
        hostVerifier: (key: Buffer) => {
          hostKeyMatched = key.equals(pinnedBlob);
          return hostKeyMatched;
        },
      });
  });
}

describe.skipIf(!hasSshd)('devstack sshd', () => {
  const sshd = useSshd();

  test('exec over ssh2 with the client key and a pinned host key', async () => {
    const s = sshd.server;
    expect(s.host).toBe('127.0.0.1');
    expect(s.hostPublicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+$/);
    expect(s.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(s.clientPrivateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
    const result = await sshExec(s, s.clientPrivateKey, 'echo hello');
    expect(result.hostKeyMatched).toBe(true);
    expect(result.stdout).toBe('hello\n');
    expect(result.code).toBe(0);
  });

  test('a different client key is rejected', async () => {
    const stranger = sshUtils.generateKeyPairSync('ed25519');
    await expect(sshExec(sshd.server, stranger.private, 'echo hello')).rejects.toThrow(
      /authentication methods failed/i,
    );
  });

  test('a host key other than the pinned one is refused by the verifier', async () => {
    const other = sshUtils.generateKeyPairSync('ed25519');
    await expect(
      sshExec(sshd.server, sshd.server.clientPrivateKey, 'echo hello', other.public),
    ).rejects.toThrow(/host/i);
  });

  test('startSshd/stop: two at once, stop() frees the port and removes the dir', async () => {
    const started = performance.now();
    const [a, b] = await Promise.all([startSshd(), startSshd()]);
    console.log(`two sshd started in ${Math.round(performance.now() - started)} ms`);
    expect(a.port).not.toBe(b.port);
    expect(a.hostKeyFingerprint).not.toBe(b.hostKeyFingerprint);
    expect((await sshExec(b, b.clientPrivateKey, 'printf %s "$USER"')).code).toBe(0);
    await Promise.all([a.stop(), b.stop()]);
    for (const s of [a, b]) {
      expect(await isPortClosed(s.host, s.port)).toBe(true);
      expect(existsSync(s.dir)).toBe(false);
      await s.stop(); // idempotent
    }
  });
});
