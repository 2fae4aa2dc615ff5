// TLS from the gateway to a PostgreSQL target, against a real PostgreSQL that refuses every
// connection without TLS (pg_hba `hostssl` only) and serves a certificate from a private CA made
// with openssl for this test. Targets are configured as an operator would (tls, tlsCa / tlsCaFile)
// and used through `sallyport sql`:
//   - verify-full with the private CA connects, and the database sees an encrypted connection;
//   - require connects without checking the certificate;
//   - verify-full refuses a server whose certificate is signed by another CA, one that only the
//     system's CAs would have to vouch for, and one whose certificate does not name the host;
//   - disable is refused by the server;
//   - a server with TLS off is named as such, for require and verify-full alike.
// Every refusal says why, and none shows the target's password.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { main } from '../../src/cli/main';
import type { Io } from '../../src/cli/output';
import { demoCustomers, type RunningPostgres, startPostgres } from '../../src/devstack';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { postgresTarget } from '../rig/postgres';
import { enableServerTls, makeTestPki, type TestPki } from '../rig/tls';
import { recordTranscript, registerSecret } from '../rig/transcript';

const REASON = 'checking the TLS set-up of the database targets';

let pgServer: RunningPostgres;
let pki: TestPki;
let t: TestGateway;
let token: string;
let home: string;
/** A TCP relay in front of PostgreSQL that notes the first 8 bytes of every connection. */
let relay: net.Server;
const openings: string[] = [];

beforeAll(async () => {
  // The certificate names 127.0.0.1 only: `localhost` is a name it does not carry.
  pki = makeTestPki({ ip: ['127.0.0.1'] });
  pgServer = await startPostgres({ seedDemo: true });
  registerSecret(pgServer.password);
  await enableServerTls(pgServer, pki, { only: true });
  relay = net.createServer((client) => {
    const upstream = net.connect({ host: pgServer.host, port: pgServer.port });
    client.once('data', (first: Buffer) => {
      openings.push(first.subarray(0, 8).toString('hex'));
      upstream.write(first);
      client.pipe(upstream).pipe(client);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const relayPort = (relay.address() as net.AddressInfo).port;
  const target = (id: string, extra: Parameters<typeof postgresTarget>[1]) =>
    postgresTarget(pgServer, { id, labels: { env: 'tls-test' }, ...extra });
  t = await startTestGateway({
    config: {
      targets: [
        target('pg-verified', { tls: 'verify-full', tlsCaFile: pki.caFile }),
        target('pg-verified-inline', { tls: 'verify-full', tlsCa: pki.caPem }),
        target('pg-required', { tls: 'require' }),
        target('pg-other-ca', { tls: 'verify-full', tlsCa: pki.otherCaPem }),
        target('pg-system-ca', { tls: 'verify-full' }),
        target('pg-wrong-name', { tls: 'verify-full', tlsCa: pki.caPem, host: 'localhost' }),
        target('pg-plain', { tls: 'disable' }),
        target('pg-relayed', { tls: 'verify-full', tlsCa: pki.caPem, port: relayPort }),
      ],
      access: {
        rules: [
          {
            name: 'tls-auto',
            requesters: { groups: ['developers'] },
            targets: { labels: { env: 'tls-test' } },
            levels: ['read'],
            maxDuration: '1h',
            approval: 'auto',
          },
        ],
      },
    },
  });
  token = await t.token('alice');
  home = mkdtempSync(path.join(tmpdir(), 'sallyport-tls-home-'));
  const api = t.client(token);
  for (const targetId of [
    'pg-verified',
    'pg-verified-inline',
    'pg-required',
    'pg-other-ca',
    'pg-system-ca',
    'pg-wrong-name',
    'pg-plain',
    'pg-relayed',
  ]) {
    const out = await api.requestAccess({ targetId, level: 'read', duration: '1h', reason: REASON });
    expect(out.outcome).toBe('granted');
  }
}, 120_000);

afterAll(async () => {
  await t?.stop();
  await new Promise((resolve) => (relay ? relay.close(resolve) : resolve(undefined)));
  await pgServer?.stop();
  pki?.remove();
  if (home) rmSync(home, { recursive: true, force: true });
});

async function sql(targetId: string, statement: string) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s) };
  const code = await main(['sql', targetId, '-c', statement, '--format', 'csv'], io, {
    SALLYPORT_HOME: home,
    SALLYPORT_GATEWAY: t.url,
    SALLYPORT_TOKEN: token,
  });
  const result = { code, out: out.join('\n'), err: err.join('\n') };
  recordTranscript('cli', JSON.stringify(result));
  expect(`${result.out}\n${result.err}`).not.toContain(pgServer.password);
  return result;
}

/** What the database says about the session's own connection. */
const SSL_OF_SESSION = 'select ssl, version from pg_stat_ssl where pid = pg_backend_pid()';

describe('TLS to PostgreSQL targets', () => {
  it('connects with verify-full against the private CA (from a file or inline), encrypted', async () => {
    for (const target of ['pg-verified', 'pg-verified-inline']) {
      const r = await sql(target, SSL_OF_SESSION);
      expect(r, r.err).toMatchObject({ code: 0 });
      expect(r.out).toMatch(/^ssl,version\nt,TLSv1\.[23]$/);
    }
    // The same data as ever comes through, masked as ever.
    const rows = await sql('pg-verified', 'select id, email from customers order by id limit 3');
    expect(rows.code).toBe(0);
    expect(rows.out.split('\n')).toHaveLength(4);
    for (const c of demoCustomers().slice(0, 3)) expect(rows.out).not.toContain(c.email);
  });

  it('connects with require, encrypted but without checking the certificate', async () => {
    const r = await sql('pg-required', SSL_OF_SESSION);
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/^ssl,version\nt,TLSv1\.[23]$/);
  });

  it('refuses with verify-full when the certificate is from another CA, unknown to the system, or for another name', async () => {
    const other = await sql('pg-other-ca', 'select 1');
    expect(other.code).not.toBe(0);
    expect(other.err).toMatch(
      /could not connect to target pg-other-ca: unable to verify the first certificate \(tls: verify-full; the target's tlsCa did not vouch for the server's certificate\)/,
    );

    const system = await sql('pg-system-ca', 'select 1');
    expect(system.code).not.toBe(0);
    expect(system.err).toMatch(
      /could not connect to target pg-system-ca: unable to verify the first certificate \(tls: verify-full; the server's certificate is not from a CA the gateway trusts: give its CA as the target's tlsCa\)/,
    );

    const name = await sql('pg-wrong-name', 'select 1');
    expect(name.code).not.toBe(0);
    expect(name.err).toMatch(
      /could not connect to target pg-wrong-name: Hostname\/IP does not match certificate's altnames: Host: localhost\..*\(tls: verify-full; the target's host must be a name or address the server's certificate carries\)/,
    );
  });

  it('is refused by a server that requires TLS when the target disables it', async () => {
    const plain = await sql('pg-plain', 'select 1');
    expect(plain.code).not.toBe(0);
    expect(plain.err).toMatch(/could not connect to target pg-plain: .*no encryption/i);
  });

  it('cancels over TLS too: the cancel key never crosses the network in clear text', async () => {
    const grants = await t.client(token).grants({ status: 'active' });
    const grantId = grants.find((g) => g.targetId === 'pg-relayed')?.id;
    expect(grantId).toBeDefined();
    const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/sql`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const frames: Array<{ type: string; id?: string }> = [];
    const seen = (type: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no ${type} frame; got ${frames.map((f) => f.type)}`)),
          20_000,
        );
        const check = () => {
          if (!frames.some((f) => f.type === type)) return;
          clearTimeout(timer);
          ws.off('message', check);
          resolve();
        };
        ws.on('message', check);
        check();
      });
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const before = openings.length;
    ws.send(JSON.stringify({ type: 'open', targetId: 'pg-relayed', grantId }));
    await seen('ready');
    ws.send(JSON.stringify({ type: 'run', id: 'sleepy', sql: 'select pg_sleep(30)' }));
    // Let the statement reach the server before cancelling it.
    await new Promise((r) => setTimeout(r, 300));
    ws.send(JSON.stringify({ type: 'cancel', id: 'sleepy' }));
    await seen('cancelled');
    ws.close();
    // The session's connection and the cancel request's: both opened with an SSLRequest, never
    // with a plain CancelRequest (00000010 04d2162e).
    const sslRequest = '0000000804d2162f';
    expect(openings.slice(before)).toEqual([sslRequest, sslRequest]);
  });

  it('is what the server enforces: a plain client is refused, a verifying one gets in', async () => {
    const plain = new pg.Client({ ...pgServer, ssl: false });
    plain.on('error', () => {});
    await expect(plain.connect()).rejects.toThrow(/no encryption/);
    const verified = new pg.Client({ ...pgServer, ssl: { ca: pki.caPem } });
    await verified.connect();
    const r = await verified.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    expect(r.rows).toEqual([{ ssl: true }]);
    await verified.end();
  });

  it('connects only with the CA bundle the target record names', async () => {
    // The bundle is read apart from the record; one that no longer matches the record's SHA-256
    // (changed in between, or behind the gateway's back) is not used, and neither is none.
    const { db } = t.gw.store;
    await db
      .updateTable('targets')
      .set({ tls_ca: pki.otherCaPem })
      .where('id', '=', 'pg-verified-inline')
      .execute();
    try {
      const r = await sql('pg-verified-inline', 'select 1');
      expect(r.code).not.toBe(0);
      expect(r.err).toContain(
        'target pg-verified-inline changed while the session was opening: open it again',
      );
    } finally {
      await db
        .updateTable('targets')
        .set({ tls_ca: pki.caPem })
        .where('id', '=', 'pg-verified-inline')
        .execute();
    }
    expect(await sql('pg-verified-inline', 'select 1')).toMatchObject({ code: 0 });
  });

  // Last: it turns TLS off on the server for good.
  it('says so when the server does not accept TLS at all', async () => {
    const admin = new pg.Client({ ...pgServer, ssl: { ca: pki.caPem } });
    await admin.connect();
    await admin.query('alter system set ssl = off');
    await admin.query('select pg_reload_conf()');
    await admin.end();
    await expect
      .poll(async () => {
        const c = new pg.Client({ ...pgServer, ssl: { ca: pki.caPem } });
        c.on('error', () => {});
        return c.connect().then(
          () => c.end().then(() => 'still on'),
          (err: Error) => err.message,
        );
      })
      .toMatch(/does not support SSL/);

    for (const id of ['pg-required', 'pg-verified']) {
      const r = await sql(id, 'select 1');
      expect(r.code).not.toBe(0);
      expect(r.err).toContain(
        `could not connect to target ${id}: The server does not support SSL connections (tls: ${id === 'pg-required' ? 'require' : 'verify-full'}; the server does not accept TLS connections: turn ssl on in its configuration)`,
      );
    }
  });
});
