import { hkdfSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TargetInput } from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { createReviewService, type ReviewService } from './access/reviews';
import { createRevoker } from './access/revocation';
import { type RevocationRelay, startRevocationRelay } from './access/revocation-relay';
import { createScheduler, type Scheduler } from './access/scheduler';
import { type AccessService, createAccessService } from './access/service';
import { SessionRegistry } from './access/sessions';
import { buildApi } from './api/server';
import { canonicalJson, createLedger, LEDGER_LOCK, type Ledger } from './audit';
import { readTlsCaFile } from './config/load';
import type { GatewayConfig, TargetConfig } from './config/schema';
import { startDemoTargets } from './demo';
import { createTokenVerifier, type DevClient, type RunningDevProvider, type TokenVerifier } from './identity';
import { startDevProviderThread } from './identity/dev-provider-thread';
import { createMasker } from './masking';
import { hubNotifier, NotificationHub } from './notify/hub';
import { createWebhookDispatcher } from './notify/webhooks';
import { createLogger, type Logger } from './observability/logger';
import { createMetrics } from './observability/metrics';
import { createRecordingCatalog, type RecordingCatalog } from './recording';
import { createSealer, loadMasterKey, MasterKeyError, type Sealer, UnsealError } from './secrets';
import { openStore, type Store } from './store/db';
import { changedFacts, targetFacts } from './targets/audit-facts';
import { createTargetRepository, pickCredential, type TargetRepository } from './targets/repository';

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
  access: AccessService;
  sessions: SessionRegistry;
  scheduler: Scheduler;
  hub: NotificationHub;
  recordings: RecordingCatalog;
  reviews: ReviewService;
  app: FastifyInstance;
  log: Logger;
  /** This process among the instances that share a store (revocation notices name it). */
  instanceId: string;
  /** With a PostgreSQL store: revocations decided by other instances close sessions held here. */
  revocationRelay?: RevocationRelay;
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
  // loadConfigFile reads tlsCaFile already (and reports a bad file by its line); a config built in
  // code may still carry the path, checked the same way.
  const { credential, ...spec } = t;
  let rest: TargetInput = spec;
  if (spec.kind === 'postgres' && spec.tlsCaFile !== undefined) {
    const { tlsCaFile, ...r } = spec;
    const read = readTlsCaFile(tlsCaFile);
    if ('problem' in read) throw new Error(`target ${t.id}: tlsCaFile ${read.problem}`);
    rest = { ...r, tlsCa: read.pem };
  }
  if (!credential) return rest;
  const { privateKeyFile, ...inline } = credential;
  const privateKey = privateKeyFile ? readFileSync(privateKeyFile, 'utf8') : inline.privateKey;
  return { ...rest, credential: { ...inline, ...(privateKey ? { privateKey } : {}) } };
}

/** The web console's confidential client: the dev provider's own, or identity.console (env secret first). */
function consoleClientFor(config: GatewayConfig, env: NodeJS.ProcessEnv) {
  const secret = env.SALLYPORT_CONSOLE_CLIENT_SECRET;
  if (config.identity.devProvider.enabled) {
    return { clientId: 'sallyport-console', clientSecret: secret ?? 'sallyport-console-demo' };
  }
  const c = config.identity.console;
  const clientSecret = secret ?? c?.clientSecret;
  return c && clientSecret ? { clientId: c.clientId, clientSecret } : undefined;
}

/**
 * Writes the config file's targets to the store and, in the same transaction, records what changed
 * since the last start: `target.created` for a new one, `target.updated` naming the facts that
 * changed (TLS mode, CA bundle, host key, address, labels, the credential…). A credential is
 * compared in memory with the stored one, unsealed, and only its change is recorded; a target given
 * without one keeps the stored one, which is no change.
 */
async function syncConfigTargets(
  store: Store,
  targets: TargetRepository,
  ledger: Ledger,
  inputs: TargetInput[],
) {
  await store.db.transaction().execute(async (trx) => {
    // The ledger's own lock, taken first: instances starting together audit each change once.
    await sql`select pg_advisory_xact_lock(${LEDGER_LOCK})`.execute(trx);
    const before = new Map((await targets.list(trx)).map((t) => [t.id, t]));
    const given = new Map(inputs.filter((t) => t.credential).map((t) => [t.id, t.credential!]));
    const stored = await targets.credentials([...given.keys()], trx);
    await targets.upsertMany(inputs, 'config', trx);
    const synced = new Set(inputs.map((t) => t.id));
    const events = [];
    for (const t of await targets.list(trx)) {
      if (!synced.has(t.id)) continue;
      const prev = before.get(t.id);
      const facts = targetFacts(t);
      const changed = prev ? changedFacts(targetFacts(prev), facts) : [];
      const credential = given.get(t.id);
      const old = stored.get(t.id);
      if (prev && credential && (!old || canonicalJson(pickCredential(credential)) !== canonicalJson(old))) {
        changed.push('credential');
        changed.sort();
      }
      if (prev && changed.length === 0 && prev.source === 'config') continue;
      events.push({
        kind: prev ? 'target.updated' : 'target.created',
        actor: 'sallyport',
        actorKind: 'system' as const,
        subject: t.id,
        targetId: t.id,
        data: {
          source: 'config',
          ...facts,
          credentialSet: t.has_credential,
          ...(prev ? { changed, ...(prev.source !== 'config' ? { previousSource: prev.source } : {}) } : {}),
        },
      });
    }
    await ledger.appendMany(events, trx);
  });
}

/** Removes targets of `source` that the current configuration no longer defines, each audited. */
async function pruneTargets(
  targets: TargetRepository,
  ledger: Ledger,
  source: 'config' | 'demo',
  keep: Set<string>,
) {
  for (const t of await targets.list()) {
    if (t.source !== source || keep.has(t.id)) continue;
    await targets.remove(t.id);
    await ledger.append({
      kind: 'target.deleted',
      actor: 'sallyport',
      actorKind: 'system',
      subject: t.id,
      targetId: t.id,
      data: { source, why: `no longer in the ${source === 'config' ? 'config file' : 'demo set-up'}` },
    });
  }
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
    const sessions = new SessionRegistry();
    const hub = new NotificationHub();
    const recordings = createRecordingCatalog({
      store,
      ledger,
      dir: config.recording.dir,
      flushMs: config.recording.flushMs,
    });
    const webhooks = createWebhookDispatcher({ store, webhooks: config.notify.webhooks, log });
    // The caller's transaction has committed: a failed enqueue is logged, not turned into an API error.
    const notifier = hubNotifier(hub, (n) =>
      webhooks
        .enqueue(n)
        .catch((err: Error) =>
          log.error({ err: err.message, event: n.event }, 'could not queue webhook deliveries'),
        ),
    );
    let scheduler: Scheduler | undefined;
    const reviews = createReviewService({ store, ledger, notifier, config: () => config.access });
    const orphaned = await reviews.cancelOrphans();
    if (orphaned > 0) log.info({ orphaned }, 'cancelled reviews left pending by a previous run');
    const access = createAccessService({
      store,
      ledger,
      targets,
      config: () => config.access,
      sessions,
      notifier,
      onDue: (at) => scheduler?.kick(at),
    });
    const instanceId = randomUUID();
    const revoker = createRevoker({
      store,
      ledger,
      sessions,
      notifier,
      log,
      instanceId,
      onDue: (at) => scheduler?.kick(at),
    });
    scheduler = createScheduler({
      store,
      ledger,
      access,
      revoker,
      notifier,
      config: () => config.access,
      log,
    });
    let verifier: TokenVerifier | null = null;
    let issuer = config.identity.issuer ?? '';
    let identityReady = false;
    let publicUrl = '';
    const consoleClient = consoleClientFor(config, env);
    if (config.identity.console && !consoleClient) {
      log.warn(
        'identity.console has no client secret (set SALLYPORT_CONSOLE_CLIENT_SECRET): console sign-in is off',
      );
    }

    const app = await buildApi(
      {
        config,
        store,
        targets,
        ledger,
        verifier: () => verifier,
        issuer: () => issuer,
        metrics,
        access,
        revoker,
        sessions,
        recordings,
        reviews,
        onSocket: (ws, caller) => {
          hub.add(ws, caller);
          access
            .recordUser(caller)
            .catch((err: Error) => log.warn({ err: err.message }, 'could not record user'));
        },
        log,
        ...(opts.consoleDir ? { consoleDir: opts.consoleDir } : {}),
        publicUrl: () => publicUrl,
        ...(consoleClient ? { consoleClient } : {}),
        consoleKey: Buffer.from(hkdfSync('sha256', key, 'sallyport', 'console-cookies/v1', 32)),
        masker: createMasker(
          config.masking,
          Buffer.from(hkdfSync('sha256', key, 'sallyport', 'masking-hash', 32)),
        ),
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
    publicUrl = url;

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
          clientSecret: consoleClient?.clientSecret ?? 'sallyport-console-demo',
          redirectUris: [`${url}/auth/callback`],
        },
        {
          kind: 'service',
          clientId: 'sallyport-ci',
          clientSecret: 'sallyport-ci-demo',
          groups: ['developers', 'ci'],
        },
      ];
      const running = await startDevProviderThread(
        {
          host: dp.host,
          port: dp.port,
          audience: config.identity.audience,
          allowNonLoopback: dp.allowNonLoopback,
          clients,
        },
        { onExit: (err) => log.error({ err: err.message }, 'the development identity provider stopped') },
      );
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

    // Config targets are the source of truth for themselves: synced on every start,
    // and removed from the store when they leave the file.
    await syncConfigTargets(store, targets, ledger, config.targets.map(targetFromConfig));
    await pruneTargets(targets, ledger, 'config', new Set(config.targets.map((t) => t.id)));

    if (!config.demo.postgres && !config.demo.ssh) await pruneTargets(targets, ledger, 'demo', new Set());
    if (config.demo.postgres || config.demo.ssh) {
      const demo = await startDemoTargets(config.demo, {
        dataDir: path.join(config.database.dataDir, '..', 'demo'),
        log: (line) => log.debug({ demo: true }, line),
      });
      cleanups.push(() => demo.stop());
      await targets.upsertMany(demo.targets, 'demo');
      await pruneTargets(targets, ledger, 'demo', new Set(demo.targets.map((t) => t.id)));
      for (const skipped of demo.skipped)
        log.warn({ target: skipped.id }, `demo target not started: ${skipped.reason}`);
    }

    // The first sweep catches up with everything that fell due while the gateway was down.
    const sweeper = scheduler;
    await sweeper.start();
    cleanups.push(() => sweeper.stop());
    let revocationRelay: RevocationRelay | undefined;
    if (store.kind === 'postgres' && config.database.url) {
      const relay = await startRevocationRelay({
        store,
        url: config.database.url,
        ledger,
        sessions,
        instanceId,
        log,
      });
      revocationRelay = relay;
      cleanups.push(() => relay.stop());
    }
    webhooks.start();
    cleanups.push(() => webhooks.stop());

    log.info({ url, targets: (await targets.list()).length }, 'gateway ready');
    return {
      url,
      issuer,
      ...(devProvider ? { devProvider } : {}),
      store,
      targets,
      ledger,
      access,
      sessions,
      scheduler,
      hub,
      recordings,
      reviews,
      app,
      log,
      instanceId,
      ...(revocationRelay ? { revocationRelay } : {}),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
