// The gateway served over HTTPS (server.tls) with a certificate from a private CA, used the way a
// CI job uses it: the real `sallyport` command in a child process signs in, asks for access and
// runs SQL over the encrypted WebSocket. The CA is given as Node gives it, NODE_EXTRA_CA_CERTS;
// without it the command refuses the gateway and says what to do.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningPostgres, startPostgres } from '../../src/devstack';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { postgresTarget } from '../rig/postgres';
import { makeTestPki, type TestPki } from '../rig/tls';
import { recordTranscript, registerSecret } from '../rig/transcript';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'gateway-server/bin/sallyport.mjs');

let pgServer: RunningPostgres;
let pki: TestPki;
let t: TestGateway;
let home: string;
let token: string;

beforeAll(async () => {
  pki = makeTestPki({ ip: ['127.0.0.1'], dns: ['localhost'] });
  pgServer = await startPostgres({ seedDemo: true });
  registerSecret(pgServer.password);
  t = await startTestGateway({
    config: {
      server: { host: '127.0.0.1', port: 0, tls: { cert: pki.certFile, key: pki.keyFile } },
      targets: [postgresTarget(pgServer, { labels: { env: 'https-test' } })],
      access: {
        rules: [
          {
            name: 'https-auto',
            requesters: { groups: ['developers'] },
            targets: { labels: { env: 'https-test' } },
            levels: ['read'],
            maxDuration: '1h',
            approval: 'auto',
          },
        ],
      },
    },
  });
  token = await t.token('alice');
  home = mkdtempSync(path.join(tmpdir(), 'sallyport-https-home-'));
}, 120_000);

afterAll(async () => {
  await t?.stop();
  await pgServer?.stop();
  pki?.remove();
  if (home) rmSync(home, { recursive: true, force: true });
});

/**
 * Runs `sallyport …` as a child process; `ca` sets NODE_EXTRA_CA_CERTS to the test CA, `session`
 * gives the gateway and token through the environment instead of a saved login.
 */
function sallyport(args: string[], opts: { ca: boolean; session?: boolean }) {
  const env: NodeJS.ProcessEnv = { ...process.env, SALLYPORT_HOME: home };
  delete env.SALLYPORT_GATEWAY;
  delete env.SALLYPORT_TOKEN;
  delete env.NODE_EXTRA_CA_CERTS;
  if (opts.ca) env.NODE_EXTRA_CA_CERTS = pki.caFile;
  if (opts.session) Object.assign(env, { SALLYPORT_GATEWAY: t.url, SALLYPORT_TOKEN: token });
  return new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, env, timeout: 60_000 }, (error, out, err) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const result = { code, out: String(out), err: String(err) };
      recordTranscript('cli', JSON.stringify({ args, ...result }));
      resolve(result);
    });
  });
}

describe('the gateway over HTTPS', () => {
  it('serves the API and the SQL channel over TLS to a CLI that trusts its CA', async () => {
    expect(t.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const login = await sallyport(['login', '--gateway', t.url, '--token', token], { ca: true });
    expect(login, login.err).toMatchObject({ code: 0 });
    expect(login.out).toContain(`signed in to ${t.url} as alice`);

    const request = await sallyport(
      ['request', 'demo', '--level', 'read', '--duration', '30m', '--reason', 'checking the TLS listener'],
      { ca: true },
    );
    expect(request, request.err).toMatchObject({ code: 0 });

    const sql = await sallyport(
      ['sql', 'demo', '-c', 'select count(*) as n from customers', '--format', 'csv'],
      {
        ca: true,
      },
    );
    expect(sql, sql.err).toMatchObject({ code: 0 });
    expect(sql.out.trim()).toMatch(/^n\n\d+$/);
  });

  it('is refused by a CLI that does not trust the CA, with what to do about it', async () => {
    const login = await sallyport(['login', '--gateway', t.url, '--token', token], { ca: false });
    expect(login.code).not.toBe(0);
    expect(login.err).toMatch(
      new RegExp(
        `cannot reach the gateway at ${t.url.replace(/\./g, '\\.')}: unable to verify the first certificate \\(the gateway's certificate is not from a CA Node trusts here; for a private CA, point NODE_EXTRA_CA_CERTS at its PEM file\\)`,
      ),
    );
    // So does `sallyport sql`, signed in through the environment.
    const sql = await sallyport(['sql', 'demo', '-c', 'select 1'], { ca: false, session: true });
    expect(sql.code).not.toBe(0);
    expect(sql.err).toMatch(
      /cannot reach the gateway(?:'s SQL channel)? at (?:https|wss):\/\/127\.0\.0\.1:\d+(?:\/api\/sql)?: unable to verify the first certificate \(the gateway's certificate is not from a CA Node trusts here; for a private CA, point NODE_EXTRA_CA_CERTS at its PEM file\)/,
    );
  });

  it('does not answer plain HTTP on its TLS port', async () => {
    const plain = t.url.replace(/^https:/, 'http:');
    await expect(fetch(`${plain}/healthz`)).rejects.toThrow();
  });
});
