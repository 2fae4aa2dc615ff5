// Desktop sign-in against the REAL development identity provider of a real test gateway,
// with Chromium (Debian's, driven by playwright-core) playing the system browser: the
// authorization URL is opened, the provider's own login form is filled in, the browser
// is redirected to the app's loopback receiver, the code is exchanged (PKCE), and the
// gateway accepts the access token. Then the token store, refresh and the failure paths.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestGateway, type TestGateway } from '@sallyport/gateway-server/rig';
import type { GatewayInfo } from '@sallyport/protocol';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../../../e2e/support/browser';
import { createDesktopSession } from '../../src/node/desktop-session';
import { createOidcClient, type OidcClient, SignInError } from '../../src/node/sign-in';
import { TokenStore } from '../../src/node/token-store';
import { fakeSecretBox } from '../support/fake-secret-box';

let gw: TestGateway;
let info: GatewayInfo;
let browser: Browser;
let oidc: OidcClient;
const dirs: string[] = [];

beforeAll(async () => {
  [gw, browser] = await Promise.all([startTestGateway(), launchBrowser()]);
  info = await gw.client().info();
  // The test gateway's provider is http on 127.0.0.1: tests inject allowInsecureRequests.
  oidc = createOidcClient({
    issuer: info.issuer,
    clientId: info.clients.desktop,
    testOnly: { allowInsecureRequests: true },
  });
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'sallyport-desktop-'));
  dirs.push(d);
  return d;
}

interface BrowserRun {
  /** The authorization URL the app asked the "system browser" to open. */
  url: string;
  /** Resolves with the page's final heading (the loopback receiver's answer). */
  done: Promise<{ heading: string; page: Page; callbackUrl: string }>;
}

/**
 * `openExternal` for tests: Chromium opens the URL and signs in through the provider's
 * login form. Like `shell.openExternal`, it returns once the browser has the URL; the
 * sign-in continues in the browser.
 */
function chromiumAsSystemBrowser(user: 'alice' | 'bob', runs: BrowserRun[]) {
  return async (url: string) => {
    const done = (async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url);
      await page.fill('#username', user);
      await page.fill('#password', `${user}-demo`);
      await Promise.all([
        page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/),
        page.click('button#sign-in'),
      ]);
      const heading = (await page.textContent('h1')) ?? '';
      return { heading, page, callbackUrl: page.url() };
    })();
    done.catch(() => {});
    runs.push({ url, done });
  };
}

describe('desktop sign-in in the system browser (real provider, Chromium)', () => {
  it('signs in with authorization code + PKCE through a loopback redirect; the gateway accepts the token', async () => {
    const runs: BrowserRun[] = [];
    let redirectUri = '';
    const tokens = await oidc.signIn({
      openExternal: chromiumAsSystemBrowser('alice', runs),
      onListening: (uri) => {
        redirectUri = uri;
      },
      timeoutMs: 30_000,
    });

    // The request the app made: S256 PKCE, state, nonce, a random loopback port.
    const auth = new URL(runs[0]!.url);
    expect(auth.origin).toBe(new URL(info.issuer).origin);
    expect(auth.searchParams.get('client_id')).toBe('sallyport-desktop');
    expect(auth.searchParams.get('response_type')).toBe('code');
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.searchParams.get('state')?.length).toBeGreaterThanOrEqual(22);
    expect(auth.searchParams.get('nonce')?.length).toBeGreaterThanOrEqual(22);
    expect(auth.searchParams.get('redirect_uri')).toBe(redirectUri);
    expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d{2,5}\/callback$/);
    expect(new URL(redirectUri).port).not.toBe('80');

    // The browser came back to the receiver and was told it can close the window.
    const browserSide = await runs[0]!.done;
    expect(browserSide.heading).toBe('You are signed in');
    expect(await browserSide.page.textContent('body')).toContain('You can close this window');
    expect(new URL(browserSide.callbackUrl).searchParams.get('code')).toBeTruthy();
    await browserSide.page.context().close();

    expect(tokens).toMatchObject({
      tokenType: expect.stringMatching(/^bearer$/i),
      username: 'alice',
      subject: 'user-alice',
    });
    expect(tokens.refreshToken).toBeTruthy();
    expect(tokens.idToken).toBeTruthy();
    expect(tokens.expiresAt).toBeGreaterThan(Date.now() + 60_000);

    const me = await gw.client(tokens.accessToken).me();
    expect(me).toMatchObject({ username: 'alice', kind: 'user', groups: ['developers'] });

    // The receiver shut down after answering.
    await expect(fetch(redirectUri)).rejects.toThrow();
  });

  it('keeps the refresh token only encrypted on disk, restores after a restart, refreshes silently', async () => {
    const runs: BrowserRun[] = [];
    const tokens = await oidc.signIn({
      openExternal: chromiumAsSystemBrowser('bob', runs),
      timeoutMs: 30_000,
    });
    await (await runs[0]!.done).page.context().close();

    const dir = tempDir();
    const file = path.join(dir, 'session.json');
    const box = fakeSecretBox();
    const storeOpts = {
      file,
      box,
      issuer: info.issuer,
      clientId: info.clients.desktop,
      refresh: (rt: string) => oidc.refresh(rt),
      revoke: (rt: string) => oidc.revoke(rt),
    };
    const store = new TokenStore({ ...storeOpts, autoRefresh: false });
    await store.save(tokens);
    const onDisk = readFileSync(file, 'utf8');
    expect(onDisk).not.toContain(tokens.refreshToken!);
    expect(onDisk).not.toContain(tokens.accessToken);
    expect(onDisk).not.toContain(tokens.idToken!);
    expect(box.calls.encrypt).toBe(1);

    // "Restart": a new store from the same file and keychain. Restoring runs the
    // refresh_token grant against the provider: a new access token, accepted by the gateway.
    const restarted = new TokenStore({
      ...storeOpts,
      // Refresh 1.5 s after the restore instead of shortly before expiry (an hour here).
      refreshBeforeMs: tokens.expiresAt - Date.now() - 1_500,
    });
    expect(await restarted.restore()).toBe(true);
    const afterRestore = await restarted.accessToken();
    expect(afterRestore).toBeTruthy();
    expect(afterRestore).not.toBe(tokens.accessToken);
    expect((await gw.client(afterRestore).me()).username).toBe('bob');

    // Silent refresh: the timer fires, a new access token appears without anyone asking.
    const refreshed = await new Promise<string>((resolve) => {
      const off = restarted.onChange(() => {
        off();
        void restarted.accessToken().then((t) => resolve(t!));
      });
    });
    expect(refreshed).not.toBe(afterRestore);
    expect((await gw.client(refreshed).me()).username).toBe('bob');
    // The file still holds only ciphertext (of the rotated refresh token, if the provider rotated it).
    const text = readFileSync(file, 'utf8');
    const lastRefreshToken = box.decryptString(
      Buffer.from(JSON.parse(text).refreshToken.encrypted, 'base64'),
    );
    expect(text).not.toContain(lastRefreshToken);
    expect(text).not.toContain(refreshed);
    expect(text).not.toContain('eyJ'); // no JWT of any kind

    // Sign-out: file gone, token revoked at the provider.
    await restarted.signOut();
    expect(existsSync(file)).toBe(false);
    expect(await restarted.accessToken()).toBeUndefined();
    const err = await oidc.refresh(lastRefreshToken).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SignInError);
    expect((err as SignInError).code).toBe('refresh_rejected');
    restarted.dispose();
  });

  it('refuses a callback that carries the wrong state, and still completes the real sign-in', async () => {
    const runs: BrowserRun[] = [];
    let authUrl = '';
    let redirectUri = '';
    const signIn = oidc.signIn({
      openExternal: (url) => {
        authUrl = url;
      },
      onListening: (uri) => {
        redirectUri = uri;
      },
      timeoutMs: 30_000,
    });
    await expect.poll(() => authUrl).not.toBe('');
    // A page (or a stale tab) hits the loopback port with a code and a foreign state.
    const forged = await fetch(`${redirectUri}?code=attacker-code&state=not-the-state`);
    expect(forged.status).toBe(400);
    const text = await forged.text();
    expect(text).toContain('Sign-in refused');
    expect(text).toContain('state mismatch');
    expect(forged.headers.get('content-security-policy')).toContain("default-src 'none'");
    // Other paths and methods are not the callback.
    expect((await fetch(`${new URL(redirectUri).origin}/`)).status).toBe(404);
    expect((await fetch(redirectUri, { method: 'POST' })).status).toBe(405);

    // The user's own browser then finishes the real sign-in.
    await chromiumAsSystemBrowser('alice', runs)(authUrl);
    const tokens = await signIn;
    expect(tokens.username).toBe('alice');
    await (await runs[0]!.done).page.context().close();
  });

  it('reports a timeout clearly and frees the port', async () => {
    let redirectUri = '';
    const started = Date.now();
    const err = await oidc
      .signIn({
        openExternal: () => {}, // the user never finishes in the browser
        onListening: (uri) => {
          redirectUri = uri;
        },
        timeoutMs: 800,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SignInError);
    expect((err as SignInError).code).toBe('timeout');
    expect((err as Error).message).toMatch(
      /^sign-in timed out after 1 s: the browser never came back to http:\/\/127\.0\.0\.1:\d+\/callback/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(fetch(redirectUri)).rejects.toThrow();
  });

  it('reports a browser that cannot be opened, and a cancelled sign-in', async () => {
    const noBrowser = await oidc
      .signIn({
        openExternal: () => {
          throw new Error('no handler for https URLs');
        },
      })
      .catch((e: unknown) => e as SignInError);
    expect(noBrowser).toMatchObject({
      code: 'browser_failed',
      message: expect.stringContaining('no handler for https URLs'),
    });

    const ac = new AbortController();
    const cancelled = oidc
      .signIn({ openExternal: () => ac.abort(), signal: ac.signal })
      .catch((e: unknown) => e);
    expect(await cancelled).toMatchObject({ code: 'cancelled' });
  });

  it('refuses the plain-http provider without the test hook or the development flag', () => {
    expect(() => createOidcClient({ issuer: info.issuer, clientId: 'sallyport-desktop' })).toThrow(
      /refusing to sign in with 'http:\/\/127\.0\.0\.1:\d+' over plain http.*SALLYPORT_ALLOW_LOOPBACK_HTTP=1/,
    );
  });
});

describe('the desktop session (what the Electron layer uses), on the development loopback path', () => {
  it('signs in via the gateway discovery, calls the API with the token, signs out', async () => {
    const dir = tempDir();
    const runs: BrowserRun[] = [];
    const box = fakeSecretBox();
    const session = await createDesktopSession({
      gatewayUrl: gw.url,
      userDataDir: dir,
      box,
      openExternal: chromiumAsSystemBrowser('alice', runs),
      // npm start's development flag: http to a loopback gateway and provider, nothing else.
      allowLoopbackHttp: true,
      signInTimeoutMs: 30_000,
    });
    expect(session.status()).toEqual({ signedIn: false, persistence: 'keychain' });
    const [a, b] = [session.signIn(), session.signIn()]; // a double click joins the running sign-in
    expect(await a).toMatchObject({ signedIn: true, username: 'alice', persistence: 'keychain' });
    expect(await b).toMatchObject({ signedIn: true });
    expect(runs).toHaveLength(1);
    await (await runs[0]!.done).page.context().close();
    expect((await session.gateway.me()).username).toBe('alice');
    expect(existsSync(path.join(dir, 'session.json'))).toBe(true);

    // A second session object (an app restart) restores from the keychain-encrypted file.
    const restarted = await createDesktopSession({
      gatewayUrl: gw.url,
      userDataDir: dir,
      box,
      openExternal: () => {
        throw new Error('a restore must not open the browser');
      },
      allowLoopbackHttp: true,
    });
    expect(await restarted.restore()).toMatchObject({ signedIn: true, username: 'alice' });
    expect((await restarted.gateway.me()).username).toBe('alice');
    restarted.dispose();

    expect(await session.signOut()).toMatchObject({ signedIn: false });
    expect(existsSync(path.join(dir, 'session.json'))).toBe(false);
    await expect(session.gateway.me()).rejects.toMatchObject({ status: 401 });
    session.dispose();
  });

  it('keeps the sign-in in memory only when the keychain is unavailable, and says so', async () => {
    const dir = tempDir();
    const runs: BrowserRun[] = [];
    const session = await createDesktopSession({
      gatewayUrl: gw.url,
      userDataDir: dir,
      box: fakeSecretBox({ available: false }),
      openExternal: chromiumAsSystemBrowser('bob', runs),
      allowLoopbackHttp: true,
      signInTimeoutMs: 30_000,
    });
    const status = await session.signIn();
    await (await runs[0]!.done).page.context().close();
    expect(status).toMatchObject({ signedIn: true, username: 'bob', persistence: 'memory' });
    expect(status.persistenceNote).toMatch(/kept in memory only/);
    expect(existsSync(path.join(dir, 'session.json'))).toBe(false);
    expect((await session.gateway.me()).username).toBe('bob');
    session.dispose();
  });
});
