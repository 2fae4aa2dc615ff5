import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createGatewayClient, type GatewayClient } from '@sallyport/protocol';
import { GatewayConfig, type GatewayConfigInput } from '../../src/config/schema';
import { type RunningGateway, startGateway } from '../../src/gateway';
import { createLogger } from '../../src/observability/logger';
import { clientCredentials, signIn } from './oidc-login';
import { recordingFetch, recordTranscript, registerSecret } from './transcript';

export type DemoUserName = 'alice' | 'bob' | 'carol' | 'dave';

export interface TestGatewayOptions {
  /** Overrides merged into a minimal config (dev provider on, PGlite in a temp dir, port 0). */
  config?: Partial<GatewayConfigInput>;
  /** Extra environment (e.g. SALLYPORT_DATABASE_URL). The master key is generated unless given. */
  env?: NodeJS.ProcessEnv;
  /** Reuse a data directory (restart tests); default: a fresh temp dir removed on stop. */
  dataDir?: string;
  masterKey?: string;
  /** Built renderer (renderer/dist) to serve as the web console. */
  consoleDir?: string;
}

export interface TestGateway {
  url: string;
  issuer: string;
  gw: RunningGateway;
  masterKey: string;
  dataDir: string;
  /** Log lines the gateway wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** An access token for a demo user, through the real login form (authorization code + PKCE). */
  token(user: DemoUserName): Promise<string>;
  /** An access token for the CI service client (client credentials). */
  serviceToken(): Promise<string>;
  /** The protocol client, authenticated as `token` (or anonymous), recording responses for the leak scan. */
  client(token?: string): GatewayClient;
  stop(): Promise<void>;
}

export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const ownsDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'sallyport-gw-'));
  const masterKey = opts.masterKey ?? randomBytes(32).toString('base64');
  registerSecret(masterKey);
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString('utf8');
      recordTranscript('log', text);
      for (const line of text.split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const input: GatewayConfigInput = {
    server: { host: '127.0.0.1', port: 0 },
    database: { dataDir: path.join(dataDir, 'store') },
    recording: { dir: path.join(dataDir, 'recordings'), flushMs: 200, sqlResultRows: 20 },
    identity: { audience: 'sallyport', devProvider: { enabled: true, host: '127.0.0.1', port: 0 } },
    logging: { level: 'debug' },
    ...opts.config,
  };
  for (const t of input.targets ?? []) registerSecret(t.credential?.password ?? t.credential?.privateKey);
  const config = GatewayConfig.parse(input);
  const env = { SALLYPORT_MASTER_KEY: masterKey, ...opts.env };
  const gw = await startGateway(config, {
    env,
    log: createLogger({ level: 'debug', destination: sink }),
    ...(opts.consoleDir ? { consoleDir: opts.consoleDir } : {}),
  });
  for (const t of await gw.targets.list()) {
    const c = await gw.targets.credential(t.id);
    registerSecret(c?.password);
    registerSecret(c?.privateKey);
  }
  const ci = gw.devProvider?.clients.find((c) => c.kind === 'service');

  return {
    url: gw.url,
    issuer: gw.issuer,
    gw,
    masterKey,
    dataDir,
    logs,
    async token(user) {
      const tokens = await signIn(
        { issuer: gw.issuer },
        {
          clientId: 'sallyport-desktop',
          redirectUri: 'http://127.0.0.1:1/callback',
          username: user,
          password: `${user}-demo`,
        },
      );
      return tokens.access_token;
    },
    async serviceToken() {
      if (ci?.kind !== 'service') throw new Error('no service client');
      return (await clientCredentials({ issuer: gw.issuer }, ci.clientId, ci.clientSecret)).access_token;
    },
    client(token) {
      return createGatewayClient({ baseUrl: gw.url, token: () => token, fetch: recordingFetch });
    },
    async stop() {
      await gw.stop();
      if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
