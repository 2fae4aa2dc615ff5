/**
 * The desktop app's session with one gateway: what `GET /api/info` says about
 * sign-in (issuer, desktop client id), the OIDC client, the token store, and a
 * gateway client that always carries a fresh access token. Plain Node; the
 * Electron layer creates one at start-up and wires its status to the window.
 */
import path from 'node:path';
import { createGatewayClient, type GatewayClient, type GatewayInfo } from '@sallyport/protocol';
import type { AuthStatus } from '../common/ipc-contract';
import { createOidcClient, isLoopbackHostname, type OidcClient, type OidcClientOptions } from './sign-in';
import { type SecretBox, TokenStore } from './token-store';

export interface DesktopSessionOptions {
  /** The gateway that serves the console and the API. */
  gatewayUrl: string;
  /** Electron's `app.getPath('userData')`. */
  userDataDir: string;
  box: SecretBox;
  openExternal: (url: string) => Promise<void> | void;
  /** Development flag: plain http to a loopback gateway and identity provider. */
  allowLoopbackHttp?: boolean;
  /** Tests only (see sign-in.ts). */
  testOnly?: OidcClientOptions['testOnly'];
  signInTimeoutMs?: number;
  refreshBeforeMs?: number;
  fetch?: typeof fetch;
  log?: (level: 'info' | 'warn', message: string) => void;
}

export interface DesktopSession {
  readonly gatewayUrl: string;
  readonly info: GatewayInfo;
  readonly oidc: OidcClient;
  readonly store: TokenStore;
  /** Authenticated as the signed-in user (token fetched, and refreshed, per call). */
  readonly gateway: GatewayClient;
  status(): AuthStatus;
  /** One interactive sign-in at a time; a second call while one runs joins it. */
  signIn(): Promise<AuthStatus>;
  signOut(): Promise<AuthStatus>;
  /** Restores the saved sign-in, if any. */
  restore(): Promise<AuthStatus>;
  dispose(): void;
}

/** The gateway must be https; plain http only for loopback with the development flag. */
export function checkGatewayUrl(raw: string, allowLoopbackHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`the gateway address '${raw}' is not a URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopbackHostname(url.hostname)) {
    if (allowLoopbackHttp) return url;
    throw new Error(
      `refusing to use the gateway at ${url.origin} over plain http: that is for local development only ` +
        '(start the app with SALLYPORT_ALLOW_LOOPBACK_HTTP=1, as npm start does) — use https',
    );
  }
  throw new Error(`the gateway address ${url.origin} must be https`);
}

export async function createDesktopSession(opts: DesktopSessionOptions): Promise<DesktopSession> {
  const gatewayUrl = checkGatewayUrl(opts.gatewayUrl, opts.allowLoopbackHttp ?? false).origin;
  const anonymous = createGatewayClient({
    baseUrl: gatewayUrl,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  const info = await anonymous.info();
  const oidc = createOidcClient({
    issuer: info.issuer,
    clientId: info.clients.desktop,
    ...(opts.allowLoopbackHttp ? { allowLoopbackHttp: true } : {}),
    ...(opts.testOnly ? { testOnly: opts.testOnly } : {}),
  });
  const store = new TokenStore({
    file: path.join(opts.userDataDir, 'session.json'),
    box: opts.box,
    issuer: info.issuer,
    clientId: info.clients.desktop,
    refresh: (rt) => oidc.refresh(rt),
    revoke: (rt) => oidc.revoke(rt),
    ...(opts.refreshBeforeMs !== undefined ? { refreshBeforeMs: opts.refreshBeforeMs } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  const gateway = createGatewayClient({
    baseUrl: gatewayUrl,
    token: () => store.accessToken(),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });

  const status = (): AuthStatus => {
    const s = store.status();
    const p = store.persistence();
    return {
      signedIn: s.signedIn,
      ...(s.username ? { username: s.username } : {}),
      ...(s.expiresAt ? { expiresAt: new Date(s.expiresAt).toISOString() } : {}),
      persistence: p.mode,
      ...(p.note ? { persistenceNote: p.note } : {}),
    };
  };

  let running: Promise<AuthStatus> | undefined;
  const signIn = (): Promise<AuthStatus> => {
    running ??= (async () => {
      const tokens = await oidc.signIn({
        openExternal: opts.openExternal,
        ...(opts.signInTimeoutMs ? { timeoutMs: opts.signInTimeoutMs } : {}),
      });
      await store.save(tokens);
      return status();
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  return {
    gatewayUrl,
    info,
    oidc,
    store,
    gateway,
    status,
    signIn,
    async signOut() {
      await store.signOut();
      return status();
    },
    async restore() {
      await store.restore();
      return status();
    },
    dispose: () => store.dispose(),
  };
}
