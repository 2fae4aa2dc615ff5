// Starting the gateway: the master key, an identity provider that is not there yet, config
// validation through the CLI, and what a restart does to the store.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import { loadConfigFile } from '../../src/config/load';
import { GatewayConfig } from '../../src/config/schema';
import { freePort, isPortClosed, sleep } from '../../src/devstack';
import { type RunningGateway, startGateway } from '../../src/gateway';
import { type RunningDevProvider, startDevProvider } from '../../src/identity';
import { createLogger } from '../../src/observability/logger';
import { MasterKeyError } from '../../src/secrets';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { clientCredentials } from '../rig/oidc-login';
import { registerSecret } from '../rig/transcript';

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const silent = () => createLogger({ level: 'silent' });

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'sallyport-startup-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fresh directory under the suite's temp root. */
function dir(name: string): string {
  const d = path.join(root, `${name}-${randomBytes(4).toString('hex')}`);
  mkdirSync(d, { recursive: true });
  return d;
}

// Anything a test starts is stopped even when the test fails half-way.
const running: Array<{ stop(): Promise<void> }> = [];
function track<T extends { stop(): Promise<void> }>(thing: T): T {
  running.push(thing);
  return thing;
}
afterEach(async () => {
  for (const r of running.splice(0).reverse()) await r.stop().catch(() => {});
});

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  const outcome = await p.then(
    (value) => ({ value }),
    (err: unknown) => ({ err }),
  );
  if ('value' in outcome) {
    const v = outcome.value as { stop?: () => Promise<void> } | undefined;
    await v?.stop?.();
    throw new Error('expected a rejection, but it resolved');
  }
  return outcome.err as Error;
}

describe('master key', () => {
  const devConfig = (dataDir: string) =>
    GatewayConfig.parse({
      server: { host: '127.0.0.1', port: 0 },
      database: { dataDir },
      identity: { devProvider: { enabled: true } },
    });

  it('refuses to start without a key, before touching the store', async () => {
    const dataDir = path.join(dir('nokey'), 'store');
    const err = await rejectionOf(startGateway(devConfig(dataDir), { env: {}, log: silent() }));
    expect(err).toBeInstanceOf(MasterKeyError);
    expect(err.message).toContain('SALLYPORT_MASTER_KEY');
    expect(err.message).toContain('secrets.masterKeyFile');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('explains that a malformed key must be 32 bytes, without echoing it', async () => {
    const short = randomBytes(10).toString('base64');
    const fromEnv = await rejectionOf(
      startGateway(devConfig(path.join(dir('shortkey'), 'store')), {
        env: { SALLYPORT_MASTER_KEY: short },
        log: silent(),
      }),
    );
    expect(fromEnv).toBeInstanceOf(MasterKeyError);
    expect(fromEnv.message).toMatch(/SALLYPORT_MASTER_KEY: the master key must be 32 bytes/);
    expect(fromEnv.message).not.toContain(short);

    const keyFile = path.join(dir('keyfile'), 'master.key');
    writeFileSync(keyFile, randomBytes(10).toString('hex'));
    const cfg = { ...devConfig(path.join(dir('shortfile'), 'store')), secrets: { masterKeyFile: keyFile } };
    const fromFile = await rejectionOf(startGateway(cfg, { env: {}, log: silent() }));
    expect(fromFile).toBeInstanceOf(MasterKeyError);
    expect(fromFile.message).toContain(keyFile);
    expect(fromFile.message).toContain('32 bytes');
  });

  it('refuses a different key on an existing store, and accepts the right one again', async () => {
    const dataDir = dir('rekey');
    const keyA = randomBytes(32).toString('base64');
    const keyB = randomBytes(32).toString('hex');
    registerSecret(keyB);
    const password = 'pw-stored-under-key-a-Qm71';
    registerSecret(password);

    const first = track(await startTestGateway({ dataDir, masterKey: keyA }));
    await first.gw.targets.upsert(
      {
        id: 'kept-ssh',
        kind: 'ssh',
        host: '10.1.2.3',
        port: 22,
        user: 'deploy',
        hostKey: HOST_KEY,
        labels: {},
        credential: { password },
      },
      'api',
    );
    await first.stop();

    const err = await rejectionOf(startTestGateway({ dataDir, masterKey: keyB }));
    expect(err).toBeInstanceOf(MasterKeyError);
    expect(err.message).toContain('wrong master key');
    expect(err.message).not.toContain(keyA);
    expect(err.message).not.toContain(keyB);

    const again = track(await startTestGateway({ dataDir, masterKey: keyA }));
    expect(await again.gw.targets.credential('kept-ssh')).toEqual({ password });
    const res = await fetch(`${again.url}/readyz`);
    expect(res.status).toBe(200);
  });
});

describe('identity provider unreachable at start', () => {
  let t: TestGateway;
  let provider: RunningDevProvider | undefined;
  let port: number;
  afterAll(async () => {
    await provider?.stop();
    await t?.stop();
  });

  type Reply = { error?: { code: string }; [key: string]: unknown };
  const get = async (p: string, token?: string) => {
    const res = await fetch(`${t.url}${p}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: res.status, json: (await res.json()) as Reply };
  };

  it('starts anyway, is not ready and rejects tokens until the provider appears, then recovers', async () => {
    port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    t = await startTestGateway({ config: { identity: { issuer, audience: 'sallyport' } } });
    expect(t.gw.devProvider).toBeUndefined();

    const notReady = await get('/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.json).toMatchObject({
      status: 'unavailable',
      checks: { store: 'ok', identity: expect.stringMatching(/identity provider not reachable/) },
    });
    const refused = await get('/api/me', 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln');
    expect(refused.status).toBe(401);
    expect(refused.json.error?.code).toBe('token_provider_unavailable');
    expect(t.logs.some((l) => l.level === 40 && String(l.msg).includes(`${issuer} unreachable`))).toBe(true);

    provider = await startDevProvider({ host: '127.0.0.1', port, audience: 'sallyport' });
    expect(provider.issuer).toBe(issuer);
    // The verifier retries discovery with backoff (0.5 s doubling): the next attempt finds it.
    const deadline = Date.now() + 20_000;
    let ready = await get('/readyz');
    while (ready.status !== 200 && Date.now() < deadline) {
      await sleep(200);
      ready = await get('/readyz');
    }
    expect(ready).toEqual({ status: 200, json: { status: 'ok', checks: { store: 'ok', identity: 'ok' } } });

    const { access_token } = await clientCredentials(provider, 'sallyport-ci', 'sallyport-ci-demo');
    const me = await get('/api/me', access_token);
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ username: 'sallyport-ci', kind: 'service', roles: ['developer'] });
  });
});

describe('sallyport config check', () => {
  async function cli(argv: string[], env: NodeJS.ProcessEnv = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, { out: (s) => void out.push(s), err: (s) => void err.push(s) }, env);
    return { code, out: out.join('\n'), err: err.join('\n') };
  }
  const check = async (yaml: string) => {
    const file = path.join(dir('cfg'), 'sallyport.yaml');
    writeFileSync(file, yaml);
    return { file, ...(await cli(['config', 'check', '-c', file])) };
  };
  const lineOf = (yaml: string, needle: string) => yaml.split('\n').findIndex((l) => l.includes(needle)) + 1;

  const good = [
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    'identity:',
    '  issuer: https://idp.example.com',
    'targets:',
    '  - id: web-1',
    '    kind: ssh',
    '    host: 10.0.0.1',
    '    user: deploy',
    `    hostKey: ${HOST_KEY}`,
    '  - id: db-1',
    '    kind: postgres',
    '    host: db.internal',
    '    port: 5432',
    '    user: app',
    '    database: app',
    '',
  ].join('\n');

  it('accepts a good file', async () => {
    const r = await check(good);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${r.file}: valid (2 targets, store: pglite)`);
  });

  it('reports a YAML syntax error with its line', async () => {
    const yaml = good.replace('  port: 0', '  port: 8080: 9090');
    const r = await check(yaml);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain(`invalid configuration in ${r.file}`);
    expect(r.err).toMatch(new RegExp(`line ${lineOf(yaml, '8080: 9090')}: YAML syntax: \\S`));
  });

  it('names the exact path and line of a string port', async () => {
    const yaml = good.replace('    port: 5432', '    port: "5432"');
    const r = await check(yaml);
    expect(r.code).toBe(2);
    expect(lineOf(yaml, 'port: "5432"')).toBe(15);
    expect(r.err).toContain('line 15: targets[1].port: expected number');
  });

  it('reports an unknown key', async () => {
    const r = await check(good.replace('  port: 0', '  port: 0\n  hots: typo'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/server: unknown key\(s\): hots/);
  });

  it('reports duplicate target ids', async () => {
    const r = await check(good.replace('  - id: db-1', '  - id: web-1'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('targets[1].id: duplicate target id "web-1" (also targets[0])');
  });

  it('refuses identity.issuer together with devProvider.enabled', async () => {
    const r = await check(
      good.replace(
        '  issuer: https://idp.example.com',
        '  issuer: https://idp.example.com\n  devProvider:\n    enabled: true',
      ),
    );
    expect(r.code).toBe(2);
    expect(r.err).toContain('identity.issuer: set either identity.issuer or identity.devProvider.enabled');
  });

  it('refuses plain HTTP on a non-loopback address', async () => {
    const r = await check(good.replace('  host: 127.0.0.1', '  host: 0.0.0.0'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('server.host: plain HTTP is only served on loopback');
  });

  it('refuses a private key on a postgres target', async () => {
    const r = await check(`${good}    credential:\n      privateKey: not-a-real-key-material\n`);
    expect(r.code).toBe(2);
    expect(r.err).toContain('targets[1].credential: postgres targets take a password, not a private key');
    expect(r.err).not.toContain('not-a-real-key-material');
  });

  it('reports a missing file', async () => {
    const file = path.join(dir('missing'), 'nope.yaml');
    const r = await cli(['config', 'check', '-c', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`invalid configuration in ${file}`);
    expect(r.err).toContain('file not found');
  });

  it('`gateway` with a bad config exits 2 without starting anything', async () => {
    const d = dir('badgw');
    const port = await freePort();
    const yaml = [
      'server:',
      '  host: 127.0.0.1',
      `  port: ${port}`,
      'database:',
      '  dataDir: ./data',
      'identity:',
      '  devProvider:',
      '    enabled: true',
      'targets:',
      '  - id: db-1',
      '    kind: postgres',
      '    host: db.internal',
      '    port: "5432"',
      '    user: app',
      '    database: app',
      '',
    ].join('\n');
    const file = path.join(d, 'sallyport.yaml');
    writeFileSync(file, yaml);
    const r = await cli(['gateway', '-c', file], {
      SALLYPORT_MASTER_KEY: randomBytes(32).toString('base64'),
    });
    expect(r.code).toBe(2);
    expect(r.err).toContain('targets[0].port: expected number');
    expect(r.out).not.toContain('listening');
    expect(existsSync(path.join(d, 'data'))).toBe(false);
    expect(await isPortClosed('127.0.0.1', port)).toBe(true);

    // A valid file without a master key also stops before anything starts.
    writeFileSync(file, yaml.replace('    port: "5432"', '    port: 5432'));
    const noKey = await cli(['gateway', '-c', file], {});
    expect(noKey.code).toBe(2);
    expect(noKey.err).toContain('no master key');
    expect(existsSync(path.join(d, 'data'))).toBe(false);
    expect(await isPortClosed('127.0.0.1', port)).toBe(true);
  });
});

describe('config targets across restarts', () => {
  it('syncs config targets into the store on every start, and audits what changed', async () => {
    const dataDir = dir('sync');
    const masterKey = randomBytes(32).toString('base64');
    const ca = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ3\n-----END CERTIFICATE-----\n';
    const target = (
      host: string,
      password: string,
      tls: { tls: 'verify-full'; tlsCa: string } | { tls: 'require' },
    ) => ({
      id: 'cfg-db',
      kind: 'postgres' as const,
      host,
      user: 'app',
      database: 'app',
      credential: { password },
      ...tls,
    });
    const targetEvents = async (t: TestGateway) =>
      (await t.gw.ledger.list({ kind: 'target.*' })).map((e) => ({
        kind: e.kind,
        actor: e.actor,
        data: e.data,
      }));

    const first = track(
      await startTestGateway({
        dataDir,
        masterKey,
        config: {
          targets: [target('old.internal', 'pw-first-start-Xy12', { tls: 'verify-full', tlsCa: ca })],
        },
      }),
    );
    expect(await first.gw.targets.get('cfg-db')).toMatchObject({
      host: 'old.internal',
      source: 'config',
      tls: 'verify-full',
      tls_ca_sha256: createHash('sha256').update(ca).digest('hex'),
    });
    expect(await first.gw.targets.tlsCa('cfg-db')).toBe(ca);
    expect(await targetEvents(first)).toEqual([
      {
        kind: 'target.created',
        actor: 'sallyport',
        data: {
          source: 'config',
          kind: 'postgres',
          host: 'old.internal',
          port: 5432,
          user: 'app',
          database: 'app',
          labels: {},
          tls: 'verify-full',
          tlsCaSha256: createHash('sha256').update(ca).digest('hex'),
          credentialSet: true,
        },
      },
    ]);
    await first.stop();

    // Verification turned down in the file: the ledger says so at the next start.
    const second = track(
      await startTestGateway({
        dataDir,
        masterKey,
        config: { targets: [target('new.internal', 'pw-second-start-Zq34', { tls: 'require' })] },
      }),
    );
    const stored = await second.gw.targets.get('cfg-db');
    expect(stored).toMatchObject({
      host: 'new.internal',
      source: 'config',
      has_credential: true,
      tls_ca_sha256: null,
    });
    expect(await second.gw.targets.credential('cfg-db')).toEqual({ password: 'pw-second-start-Zq34' });
    expect((await second.gw.targets.list()).map((t) => t.id)).toEqual(['cfg-db']);
    const events = await targetEvents(second);
    expect(events).toHaveLength(2);
    expect(events[1]).toEqual({
      kind: 'target.updated',
      actor: 'sallyport',
      data: expect.objectContaining({
        source: 'config',
        host: 'new.internal',
        tls: 'require',
        tlsCaSha256: null,
        credentialSet: true,
        changed: ['credential', 'host', 'tls', 'tlsCaSha256'],
      }),
    });
    await second.stop();

    // Nothing changed: nothing new in the ledger (the credential is not compared).
    const third = track(
      await startTestGateway({
        dataDir,
        masterKey,
        config: { targets: [target('new.internal', 'pw-second-start-Zq34', { tls: 'require' })] },
      }),
    );
    expect(await targetEvents(third)).toHaveLength(2);
    const everything = JSON.stringify(await third.gw.ledger.list());
    expect(everything).not.toContain('MIIBszCCAVmgAwIBAgIUJ3');
    expect(everything).not.toContain('pw-second-start-Zq34');
    expect(everything).not.toContain('pw-first-start-Xy12');
    expect((await third.gw.ledger.verify()).ok).toBe(true);
  });

  it('checks a tlsCaFile given in a config built in code, as the file loader does', async () => {
    const d = dir('cafile');
    const keyFile = path.join(d, 'oops.pem');
    writeFileSync(
      keyFile,
      '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKeyMaterialNotToPrint\n-----END PRIVATE KEY-----\n',
    );
    const target = (tlsCaFile: string) => ({
      id: 'cfg-ca',
      kind: 'postgres' as const,
      host: 'db.internal',
      user: 'app',
      database: 'app',
      tls: 'verify-full' as const,
      tlsCaFile,
    });
    const startWith = (tlsCaFile: string) =>
      startTestGateway({ dataDir: dir('cafile-store'), config: { targets: [target(tlsCaFile)] } }).then(
        track,
      );

    const notCerts = await startWith(keyFile).then(
      () => 'started',
      (err: Error) => err.message,
    );
    expect(notCerts).toMatch(/^target cfg-ca: tlsCaFile .*oops\.pem: PEM certificates/);
    expect(notCerts).not.toContain('KeyMaterialNotToPrint');
    await expect(startWith(path.join(d, 'missing.pem'))).rejects.toThrow(
      /^target cfg-ca: tlsCaFile .*missing\.pem: file not found$/,
    );
  });

  it('takes SALLYPORT_TARGET_<ID>_PASSWORD / _PRIVATE_KEY from the environment', async () => {
    const d = dir('envov');
    const file = path.join(d, 'sallyport.yaml');
    writeFileSync(
      file,
      [
        'server:',
        '  host: 127.0.0.1',
        '  port: 0',
        'database:',
        '  dataDir: ./data',
        'identity:',
        '  devProvider:',
        '    enabled: true',
        'logging:',
        '  level: silent',
        'targets:',
        '  - id: db-main',
        '    kind: postgres',
        '    host: db.internal',
        '    user: app',
        '    database: app',
        '    credential:',
        '      password: pw-from-the-file-1',
        '  - id: db-other',
        '    kind: postgres',
        '    host: db2.internal',
        '    user: app',
        '    database: app',
        '    credential:',
        '      password: pw-from-the-file-2',
        '  - id: web-1',
        '    kind: ssh',
        '    host: 10.0.0.1',
        '    user: deploy',
        `    hostKey: ${HOST_KEY}`,
        '',
      ].join('\n'),
    );
    const env = {
      SALLYPORT_MASTER_KEY: randomBytes(32).toString('base64'),
      SALLYPORT_TARGET_DB_MAIN_PASSWORD: 'pw-from-the-env-Rt55',
      SALLYPORT_TARGET_WEB_1_PRIVATE_KEY: 'key-from-the-env-Pk88',
    };
    registerSecret(env.SALLYPORT_TARGET_DB_MAIN_PASSWORD);
    registerSecret(env.SALLYPORT_TARGET_WEB_1_PRIVATE_KEY);
    const gw: RunningGateway = track(await startGateway(loadConfigFile(file, env), { env, log: silent() }));
    expect(await gw.targets.credential('db-main')).toEqual({ password: 'pw-from-the-env-Rt55' });
    expect(await gw.targets.credential('db-other')).toEqual({ password: 'pw-from-the-file-2' });
    expect(await gw.targets.credential('web-1')).toEqual({ privateKey: 'key-from-the-env-Pk88' });
    expect(gw.store.kind).toBe('pglite');
    expect(existsSync(path.join(d, 'data'))).toBe(true);
  });
});
