import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TargetInput } from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import { buildApi } from './api/server';
import { createLedger, type Ledger } from './audit';
import type { GatewayConfig, TargetConfig } from './config/schema';
import { startDemoTargets } from './demo';
import {
  createTokenVerifier,
  type DevClient,
  type RunningDevProvider,
  startDevProvider,
  type TokenVerifier,
} from './identity';
import { createLogger, type Logger } from './observability/logger';
import { createMetrics } from './observability/metrics';
import { createSealer, loadMasterKey, MasterKeyError, type Sealer, UnsealError } from './secrets';
import { openStore, type Store } from './store/db';
import { createTargetRepository, type TargetRepository } from './targets/repository';

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Directory of the built web console to serve at `/`. */
  consoleDir?: string;
}

export interface RunningGateway {
  url: string;
  issuer: string;
  /** Present when the development identity provider runs. */
  devProvider?: RunningDevProvider & { clients: DevClient[] };
  store: Store;
  targets: TargetRepository;
  ledger: Ledger;
  app: FastifyInstance;
  log: Logger;
  stop(): Promise<void>;
}

const KEY_CHECK = 'master_key_check';

/** Refuses to start when the key differs from the one the store's secrets were sealed with. */
async function checkMasterKey(store: Store, sealer: Sealer): Promise<void> {
  const row = await store.db
    .selectFrom('meta')
    .select('value')
    .where('key', '=', KEY_CHECK)
    .executeTakeFirst();
  if (!row) {
    await store.db
      .insertInto('meta')
      .values({ key: KEY_CHECK, value: sealer.seal('sallyport', 'meta:key-check') })
      .execute();
    return;
  }
  try {
    sealer.open(row.value, 'meta:key-check');
  } catch (err) {
    if (err instanceof UnsealError) {
      throw new MasterKeyError(
        'wrong master key: it does not match the key this store was created with (the credentials stored here cannot be decrypted)',
      );
    }
    throw err;
  }
}

function targetFromConfig(t: TargetConfig): TargetInput {
  const { credential, ...rest } = t;
  if (!credential) return rest;
  const { privateKeyFile, ...inline } = credential;
  const privateKey = privateKeyFile ? readFileSync(privateKeyFile, 'utf8') : inline.privateKey;
  return { ...rest, credential: { ...inline, ...(privateKey ? { privateKey } : {}) } };
}

export async function startGateway(config: GatewayConfig, opts: StartOptions = {}): Promise<RunningGateway> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? createLogger({ level: config.logging.level });
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      await fn().catch((err: Error) => log.warn({ err: err.message }, 'error during shutdown'));
    }
  };

  try {
    const key = loadMasterKey({ env, file: config.secrets.masterKeyFile });
    const sealer = createSealer(key);
    const store = await openStore(
      config.database.url ? { url: config.database.url } : { dataDir: config.database.dataDir },
    );
    cleanups.push(() => store.close());
    log.info(
      { store: store.kind, ...(store.kind === 'pglite' ? { dataDir: config.database.dataDir } : {}) },
      'store open',
    );
    await checkMasterKey(store, sealer);

    const targets = createTargetRepository(store, sealer);
    const ledger = createLedger(store);
    const metrics = createMetrics();
    let verifier: TokenVerifier | null = null;
    let issuer = config.identity.issuer ?? '';
    let identityReady = false;

    const app = await buildApi(
      {
        config,
        store,
        targets,
        ledger,
        verifier: () => verifier,
        issuer: () => issuer,
        metrics,
        log,
        ...(opts.consoleDir ? { consoleDir: opts.consoleDir } : {}),
        readiness: async () => ({ identity: identityReady ? null : 'identity provider not reachable yet' }),
      },
      config.server.tls
        ? {
            https: {
              key: readFileSync(config.server.tls.key),
              cert: readFileSync(config.server.tls.cert),
              ...(config.server.tls.ca ? { ca: readFileSync(config.server.tls.ca) } : {}),
            },
            trustProxy: false,
          }
        : { trustProxy: config.server.behindTlsProxy },
    );
    cleanups.push(() => app.close());
    await app.listen({ host: config.server.host, port: config.server.port });
    const addr = app.server.address() as AddressInfo;
    const scheme = config.server.tls ? 'https' : 'http';
    const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const url = config.server.publicUrl?.replace(/\/$/, '') ?? `${scheme}://${hostForUrl}:${addr.port}`;

    // The development provider starts after the API listens, so its redirect URIs know the gateway's port.
    let devProvider: RunningGateway['devProvider'];
    if (config.identity.devProvider.enabled) {
      const dp = config.identity.devProvider;
      const clients: DevClient[] = [
        { kind: 'public', clientId: 'sallyport-desktop', redirectUris: ['http://127.0.0.1/callback'] },
        { kind: 'public', clientId: 'sallyport-cli', redirectUris: ['http://127.0.0.1/callback'] },
        {
          kind: 'confidential',
          clientId: 'sallyport-console',
          clientSecret: env.SALLYPORT_CONSOLE_CLIENT_SECRET ?? 'sallyport-console-demo',
          redirectUris: [`${url}/auth/callback`],
        },
        {
          kind: 'service',
          clientId: 'sallyport-ci',
          clientSecret: 'sallyport-ci-demo',
          groups: ['developers', 'ci'],
        },
      ];
      const running = await startDevProvider({
        host: dp.host,
        port: dp.port,
        audience: config.identity.audience,
        allowNonLoopback: dp.allowNonLoopback,
        clients,
      });
      cleanups.push(() => running.stop());
      devProvider = { ...running, clients };
      issuer = running.issuer;
      log.info({ issuer }, 'development identity provider started (demo users: alice, bob, carol, dave)');
    }

    const created = await createTokenVerifier(
      {
        issuer,
        audience: config.identity.audience,
        algorithms: config.identity.algorithms,
        groupsClaim: config.identity.groupsClaim,
        clockToleranceSeconds: config.identity.clockToleranceSeconds,
      },
      { warn: (o, m) => log.warn(o, m), info: (o, m) => log.info(o, m) },
    );
    verifier = created;
    created.ready().then(
      () => {
        identityReady = true;
      },
      () => {},
    );

    // Config targets are the source of truth for themselves: synced on every start.
    for (const t of config.targets) await targets.upsert(targetFromConfig(t), 'config');

    if (config.demo.postgres || config.demo.ssh) {
      const demo = await startDemoTargets(config.demo, {
        dataDir: path.join(config.database.dataDir, '..', 'demo'),
        log: (line) => log.debug({ demo: true }, line),
      });
      cleanups.push(() => demo.stop());
      for (const t of demo.targets) await targets.upsert(t, 'demo');
      for (const skipped of demo.skipped)
        log.warn({ target: skipped.id }, `demo target not started: ${skipped.reason}`);
    }

    log.info({ url, targets: (await targets.list()).length }, 'gateway ready');
    return {
      url,
      issuer,
      ...(devProvider ? { devProvider } : {}),
      store,
      targets,
      ledger,
      app,
      log,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
