/**
 * OIDC sign-in for the desktop app, the way RFC 8252 says native apps should do it:
 * in the system browser (the user's own, with their password manager and SSO
 * session), authorization code + PKCE (S256) + state + nonce, and a one-shot
 * redirect receiver on 127.0.0.1 at a random port. The app never sees the password.
 *
 * Transport rule: the identity provider must be https. Plain http is accepted only
 * when (a) a test injects `testOnly.allowInsecureRequests`, or (b) the issuer and
 * every endpoint it advertises are loopback AND the caller passes the explicit
 * `allowLoopbackHttp` development flag (the desktop app sets it only from
 * `SALLYPORT_ALLOW_LOOPBACK_HTTP=1` / `--allow-loopback-http`, which the local dev
 * setup passes; see main/README.md). Nothing else turns TLS checks off.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';

export type SignInErrorCode =
  | 'insecure_issuer'
  | 'discovery_failed'
  | 'browser_failed'
  | 'timeout'
  | 'cancelled'
  | 'denied'
  | 'exchange_failed'
  | 'refresh_rejected'
  | 'refresh_failed';

export class SignInError extends Error {
  constructor(
    readonly code: SignInErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SignInError';
  }
}

export interface OidcClientOptions {
  /** The identity provider's issuer URL (from the gateway's `GET /api/info`). */
  issuer: string;
  /** The desktop app's public client id (`sallyport-desktop`). */
  clientId: string;
  /** Default `openid profile email groups offline_access`. */
  scope?: string;
  /** RFC 8707 resource indicator for the gateway, when the provider needs one. */
  resource?: string;
  /**
   * Development only: accept a plain-http issuer when it and all its endpoints are
   * loopback. Refused for any other host.
   */
  allowLoopbackHttp?: boolean;
  /** Tests only. Never set by the app (a unit test checks the Electron layer). */
  testOnly?: { allowInsecureRequests?: boolean };
}

export interface OidcTokens {
  accessToken: string;
  tokenType: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  refreshToken?: string;
  idToken?: string;
  scope?: string;
  subject?: string;
  username?: string;
}

export interface SignInOptions {
  /** Opens the URL in the system browser (Electron's `shell.openExternal`; Chromium in tests). */
  openExternal: (url: string) => Promise<void> | void;
  /** How long to wait for the browser to come back. Default 5 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with the redirect URI once the receiver listens (diagnostics, tests). */
  onListening?: (redirectUri: string) => void;
}

const DEFAULT_SCOPE = 'openid profile email groups offline_access';
const DEFAULT_TIMEOUT_MS = 5 * 60_000;

export function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Decides whether the issuer may be used, and whether plain http must be allowed for
 * it. Throws `insecure_issuer` with the rule spelled out.
 */
export function issuerTransport(
  issuer: string,
  opts: Pick<OidcClientOptions, 'allowLoopbackHttp' | 'testOnly'>,
): { insecure: boolean } {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new SignInError('insecure_issuer', `the identity provider issuer '${issuer}' is not a URL`);
  }
  if (url.protocol === 'https:') return { insecure: false };
  if (url.protocol !== 'http:')
    throw new SignInError('insecure_issuer', `the identity provider issuer '${issuer}' must be an https URL`);
  if (opts.testOnly?.allowInsecureRequests) return { insecure: true };
  if (!isLoopbackHostname(url.hostname))
    throw new SignInError(
      'insecure_issuer',
      `refusing to sign in with '${issuer}': plain http is never accepted for a non-loopback identity provider; use https`,
    );
  if (!opts.allowLoopbackHttp)
    throw new SignInError(
      'insecure_issuer',
      `refusing to sign in with '${issuer}' over plain http. A loopback identity provider over http is for ` +
        'local development only: start the app with SALLYPORT_ALLOW_LOOPBACK_HTTP=1 (npm start does) or use https',
    );
  return { insecure: true };
}

function assertEndpointsLoopback(config: oidc.Configuration): void {
  const meta = config.serverMetadata();
  for (const [name, value] of Object.entries(meta)) {
    if (!name.endsWith('_endpoint') && name !== 'jwks_uri' && name !== 'issuer') continue;
    if (typeof value !== 'string') continue;
    const u = new URL(value);
    if (u.protocol === 'http:' && !isLoopbackHostname(u.hostname))
      throw new SignInError(
        'insecure_issuer',
        `the identity provider advertises ${name} ${value} over plain http on a non-loopback host; refusing`,
      );
  }
}

/** The `exp` of a JWT access token, if it is one; no signature check (only used for scheduling). */
function jwtExpiry(token: string): number | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function toTokens(
  res: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
  now: number,
): OidcTokens {
  const expiresIn = res.expiresIn();
  const expiresAt =
    expiresIn !== undefined ? now + expiresIn * 1000 : (jwtExpiry(res.access_token) ?? now + 5 * 60_000);
  const claims = res.id_token ? res.claims() : undefined;
  const username =
    typeof claims?.preferred_username === 'string'
      ? claims.preferred_username
      : typeof claims?.email === 'string'
        ? claims.email
        : undefined;
  return {
    accessToken: res.access_token,
    tokenType: res.token_type,
    expiresAt,
    ...(res.refresh_token ? { refreshToken: res.refresh_token } : {}),
    ...(res.id_token ? { idToken: res.id_token } : {}),
    ...(res.scope ? { scope: res.scope } : {}),
    ...(claims?.sub ? { subject: claims.sub } : {}),
    ...(username ? { username } : {}),
  };
}

const describe = (err: unknown): string => {
  if (err instanceof oidc.ResponseBodyError)
    return err.error_description ? `${err.error}: ${err.error_description}` : err.error;
  return err instanceof Error ? err.message : String(err);
};

// ---------------------------------------------------------------- loopback receiver

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function escapeHtml(s: string): string {
  return s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

export function callbackPage(title: string, message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} - Sallyport</title>
<style>body{font-family:system-ui,sans-serif;background:#f4f5f7;display:flex;justify-content:center;padding-top:15vh;margin:0}
main{background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);max-width:28rem}
h1{font-size:1.25rem;margin-top:0}</style></head>
<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></main></body></html>`;
}

interface Callback {
  url: URL;
  /** Answers the browser's pending request, then the receiver shuts down. */
  respond(status: number, title: string, message: string): void;
}

interface LoopbackReceiver {
  redirectUri: string;
  callback: Promise<Callback>;
  close(): Promise<void>;
}

async function startReceiver(opts: {
  expectedState: string;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<LoopbackReceiver> {
  let settle: { resolve(c: Callback): void; reject(e: Error): void } | undefined;
  const callback = new Promise<Callback>((resolve, reject) => {
    settle = { resolve, reject };
  });
  callback.catch(() => {}); // observed by the caller; avoid an unhandled rejection in between
  let done = false;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, title: string, message: string) => {
      res.writeHead(status, PAGE_HEADERS);
      res.end(callbackPage(title, message));
    };
    const url = new URL(req.url ?? '/', redirectUri);
    if (url.pathname !== '/callback')
      return send(404, 'Not found', 'This address only receives Sallyport sign-ins.');
    if (req.method !== 'GET') return send(405, 'Method not allowed', 'Sign-in responses arrive with GET.');
    if (done)
      return send(
        409,
        'Sign-in already finished',
        'This sign-in has already completed. You can close this window.',
      );
    // A response that does not carry this sign-in's state is not ours (a stale tab, or a
    // page trying to sign the user in to someone else's account): refuse it, keep waiting.
    if (url.searchParams.get('state') !== opts.expectedState)
      return send(
        400,
        'Sign-in refused',
        'This sign-in response does not belong to the sign-in the Sallyport app started (state mismatch). ' +
          'Start the sign-in again from the app.',
      );
    done = true;
    settle?.resolve({
      url,
      respond(status, title, message) {
        send(status, title, message);
        void close();
      },
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const redirectUri = `http://127.0.0.1:${port}/callback`;

  let closed: Promise<void> | undefined;
  function close(): Promise<void> {
    closed ??= new Promise<void>((resolve) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      server.close(() => resolve());
      // Give the last response a moment to flush, then drop idle keep-alive sockets.
      setTimeout(() => server.closeAllConnections(), 200).unref();
    });
    return closed;
  }
  const fail = (err: SignInError) => {
    if (done) return;
    done = true;
    settle?.reject(err);
    void close();
  };
  const timer = setTimeout(
    () =>
      fail(
        new SignInError(
          'timeout',
          `sign-in timed out after ${Math.round(opts.timeoutMs / 1000)} s: the browser never came back to ` +
            `${redirectUri}. Finish signing in within the time limit, or start the sign-in again.`,
        ),
      ),
    opts.timeoutMs,
  );
  timer.unref();
  const onAbort = () => fail(new SignInError('cancelled', 'sign-in cancelled'));
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  return { redirectUri, callback, close };
}

// ---------------------------------------------------------------- the client

export interface OidcClient {
  /** Discovery (cached after the first success). */
  configuration(): Promise<oidc.Configuration>;
  signIn(opts: SignInOptions): Promise<OidcTokens>;
  /** refresh_token grant. `refresh_rejected` means the session is over; `refresh_failed` may be retried. */
  refresh(refreshToken: string): Promise<OidcTokens>;
  /** Best effort: tells the provider to forget a refresh token (sign-out). */
  revoke(token: string): Promise<void>;
}

export function createOidcClient(opts: OidcClientOptions): OidcClient {
  const transport = issuerTransport(opts.issuer, opts);
  let cached: Promise<oidc.Configuration> | undefined;

  function configuration(): Promise<oidc.Configuration> {
    cached ??= (async () => {
      try {
        const config = await oidc.discovery(new URL(opts.issuer), opts.clientId, undefined, oidc.None(), {
          ...(transport.insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
          timeout: 15,
        });
        if (transport.insecure && !opts.testOnly?.allowInsecureRequests) assertEndpointsLoopback(config);
        return config;
      } catch (err) {
        cached = undefined;
        if (err instanceof SignInError) throw err;
        throw new SignInError(
          'discovery_failed',
          `cannot read the identity provider's configuration at ${opts.issuer}: ${describe(err)}`,
          { cause: err },
        );
      }
    })();
    return cached;
  }

  async function signIn(so: SignInOptions): Promise<OidcTokens> {
    const config = await configuration();
    const verifier = oidc.randomPKCECodeVerifier();
    const challenge = await oidc.calculatePKCECodeChallenge(verifier);
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const receiver = await startReceiver({
      expectedState: state,
      timeoutMs: so.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      ...(so.signal ? { signal: so.signal } : {}),
    });
    so.onListening?.(receiver.redirectUri);
    try {
      const authUrl = oidc.buildAuthorizationUrl(config, {
        redirect_uri: receiver.redirectUri,
        scope: opts.scope ?? DEFAULT_SCOPE,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state,
        nonce,
        ...(opts.resource ? { resource: opts.resource } : {}),
      });
      try {
        await so.openExternal(authUrl.href);
      } catch (err) {
        throw new SignInError('browser_failed', `could not open the system browser: ${describe(err)}`, {
          cause: err,
        });
      }
      const cb = await receiver.callback;
      const error = cb.url.searchParams.get('error');
      if (error) {
        const description = cb.url.searchParams.get('error_description');
        cb.respond(
          400,
          'Sign-in failed',
          `The identity provider said: ${description ?? error}. Return to the app.`,
        );
        throw new SignInError(
          'denied',
          `the identity provider refused the sign-in: ${error}${description ? ` (${description})` : ''}`,
        );
      }
      let res: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
      try {
        res = await oidc.authorizationCodeGrant(config, cb.url, {
          pkceCodeVerifier: verifier,
          expectedState: state,
          expectedNonce: nonce,
          idTokenExpected: true,
        });
      } catch (err) {
        cb.respond(
          400,
          'Sign-in failed',
          'The sign-in could not be completed. Return to the app and try again.',
        );
        throw new SignInError('exchange_failed', `the code exchange failed: ${describe(err)}`, {
          cause: err,
        });
      }
      cb.respond(200, 'You are signed in', 'You can close this window and return to the Sallyport app.');
      return toTokens(res, Date.now());
    } finally {
      await receiver.close();
    }
  }

  async function refresh(refreshToken: string): Promise<OidcTokens> {
    const config = await configuration();
    try {
      return toTokens(await oidc.refreshTokenGrant(config, refreshToken), Date.now());
    } catch (err) {
      if (err instanceof oidc.ResponseBodyError && (err.error === 'invalid_grant' || err.status === 400))
        throw new SignInError(
          'refresh_rejected',
          `the identity provider ended the session: ${describe(err)}`,
          {
            cause: err,
          },
        );
      throw new SignInError('refresh_failed', `could not refresh the sign-in: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  async function revoke(token: string): Promise<void> {
    const config = await configuration();
    if (!config.serverMetadata().revocation_endpoint) return;
    await oidc.tokenRevocation(config, token, { token_type_hint: 'refresh_token' });
  }

  return { configuration, signIn, refresh, revoke };
}
