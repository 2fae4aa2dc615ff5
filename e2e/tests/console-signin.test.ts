// The web console in Chromium against a real gateway and its development identity provider:
// sign-in through the provider's own login page, the targets list, sign-out, CSRF and CSP.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestGateway } from '@sallyport/gateway-server/rig';
import type { TargetInput } from '@sallyport/protocol';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newUserContext, type PageProblem, screenshot, watchPage } from '../support/browser';
import { sessionCookie, signInThroughProvider, startConsoleGateway } from '../support/console';

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; " +
  "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const TARGETS: TargetInput[] = [
  {
    id: 'orders-db',
    kind: 'postgres',
    name: 'Orders database',
    host: 'orders.db.internal',
    port: 5432,
    user: 'app',
    database: 'orders',
    tls: 'disable',
    labels: { env: 'prod', team: 'payments' },
  },
  {
    id: 'billing-staging',
    kind: 'postgres',
    name: 'Billing (staging)',
    host: 'billing.staging.internal',
    port: 5432,
    user: 'app',
    database: 'billing',
    tls: 'disable',
    labels: { env: 'staging', team: 'payments' },
  },
  {
    id: 'bastion-prod',
    kind: 'ssh',
    name: 'Production bastion',
    host: '10.20.0.4',
    port: 22,
    user: 'ops',
    hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
    labels: { env: 'prod', team: 'platform' },
  },
];

// Deny by default: developers see (and may request) what these rules name.
const ACCESS = {
  rules: [
    {
      name: 'developers-staging',
      requesters: { groups: ['developers'] },
      targets: { labels: { env: 'staging' } },
      levels: ['read' as const, 'write' as const],
      maxDuration: '4h',
      approval: 'auto' as const,
    },
    {
      name: 'developers-prod',
      requesters: { groups: ['developers'] },
      targets: { labels: { env: 'prod' } },
      levels: ['read' as const, 'shell' as const],
      maxDuration: '2h',
      approval: { approvers: { groups: ['approvers'] } },
    },
  ],
};

let gw: TestGateway;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  [gw, browser] = await Promise.all([
    startConsoleGateway({ config: { targets: TARGETS, access: ACCESS } }),
    launchBrowser(),
  ]);
  // Alice already holds a grant on staging and waits for approval on prod (through the API).
  const alice = gw.client(await gw.token('alice'));
  await alice.requestAccess({
    targetId: 'billing-staging',
    level: 'read',
    duration: '1h',
    reason: 'check the failed invoice run',
  });
  await alice.requestAccess({
    targetId: 'orders-db',
    level: 'read',
    duration: '30m',
    reason: 'reconcile yesterday orders',
  });
});
afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await browser?.close();
  await gw?.stop();
});

async function newPage(): Promise<{ page: Page; problems: PageProblem[] }> {
  const context = await newUserContext(browser);
  contexts.push(context);
  const page = await context.newPage();
  return { page, problems: watchPage(page) };
}

/**
 * Problems on the console's own pages. The one expected message is the signed-out
 * probe: `GET /api/me` answers 401, which Chromium logs as a failed resource.
 */
function consoleProblems(problems: PageProblem[]): PageProblem[] {
  return problems.filter(
    (p) =>
      !(p.kind === 'console' && p.url === `${gw.url}/api/me` && p.text.includes('status of 401')) &&
      (p.url === undefined || p.url.startsWith(gw.url)),
  );
}

const rows = (page: Page) => page.locator('tbody tr');
const rowIds = (page: Page) =>
  rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-target-id')));

describe('web console sign-in', () => {
  it('alice signs in on the provider login page and browses, searches and filters the targets', async () => {
    const { page, problems } = await newPage();

    const first = await page.goto(`${gw.url}/`);
    expect(first?.status()).toBe(200);
    const signIn = page.getByRole('link', { name: 'Sign in' });
    await signIn.waitFor();
    expect(await page.getByTestId('user').count()).toBe(0);
    await screenshot(page, '01-signed-out');

    await signIn.click();
    await page.locator('#username').waitFor();
    expect(new URL(page.url()).origin).toBe(new URL(gw.issuer).origin);
    expect(await page.getByRole('heading', { name: 'Sign in to Sallyport' }).isVisible()).toBe(true);
    await screenshot(page, '02-provider-login');

    await page.locator('#username').fill('alice');
    await page.locator('#password').fill('alice-demo');
    await page.locator('#sign-in').click();
    await page.waitForURL(`${gw.url}/`);
    const user = page.getByTestId('user');
    await user.waitFor();
    expect(await user.getByText('Alice Developer').isVisible()).toBe(true);
    expect(await user.getByRole('list', { name: 'Roles' }).textContent()).toBe('developer');
    await expect.poll(() => rows(page).count()).toBe(3);
    expect(await rowIds(page)).toEqual(['billing-staging', 'orders-db', 'bastion-prod']);
    const orders = page.locator('tr[data-target-id="orders-db"]');
    expect(await orders.textContent()).toMatch(/Orders database[\s\S]*orders-db[\s\S]*PostgreSQL/);
    expect(await orders.locator('.chip').allInnerTexts()).toEqual(['env=prod', 'team=payments']);
    const access = (id: string) =>
      page.locator(`tr[data-target-id="${id}"] [data-access]`).getAttribute('data-access');
    expect([
      await access('billing-staging'),
      await access('orders-db'),
      await access('bastion-prod'),
    ]).toEqual(['active', 'pending', 'none']);
    expect(await page.getByTestId('platform-note').textContent()).toContain(
      'Desktop notifications are available in the Sallyport app',
    );
    // The session cookie is HttpOnly and strict; no token reaches the page.
    const cookie = (await page.context().cookies()).find((c) => c.name === 'sallyport_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(await page.evaluate('document.cookie')).toBe('');
    await screenshot(page, '03-targets');

    await page.getByLabel('Search targets').fill('bill');
    await expect.poll(() => rowIds(page)).toEqual(['billing-staging']);
    expect(await page.getByTestId('target-count').textContent()).toBe('1 of 3 targets');
    await screenshot(page, '04-search');

    await page.getByLabel('Search targets').fill('');
    await page.getByLabel('Filter by label').selectOption('env=prod');
    await expect.poll(() => rowIds(page)).toEqual(['orders-db', 'bastion-prod']);
    expect(await page.getByTestId('target-count').textContent()).toBe('2 of 3 targets');
    await screenshot(page, '05-label-filter');

    // Search and label combine; clicking a label chip picks that filter.
    await page.locator('tr[data-target-id="bastion-prod"] .chip', { hasText: 'team=platform' }).click();
    await expect.poll(() => rowIds(page)).toEqual(['bastion-prod']);
    expect(await page.getByLabel('Filter by label').inputValue()).toBe('team=platform');

    expect(consoleProblems(problems)).toEqual([]);
  });

  it('keeps a wrong password on the provider login page with its error', async () => {
    const { page } = await newPage();
    await page.goto(`${gw.url}/`);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.locator('#username').fill('alice');
    await page.locator('#password').fill('not-her-password');
    await page.locator('#sign-in').click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toBe('Invalid username or password.');
    expect(new URL(page.url()).origin).toBe(new URL(gw.issuer).origin);
    expect(await page.locator('#username').inputValue()).toBe('alice');
    expect((await page.context().cookies()).some((c) => c.name === 'sallyport_session')).toBe(false);
    await screenshot(page, '06-wrong-password');
  });

  it('signs out back to the sign-in screen, ends the session on the gateway and asks for the password again', async () => {
    const { page, problems } = await newPage();
    await signInThroughProvider(page, gw.url, 'bob');
    expect(await page.getByTestId('user').getByText('Bob Approver').isVisible()).toBe(true);
    const cookie = await sessionCookie(page);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    expect(await page.getByRole('status').textContent()).toBe('You have signed out.');
    expect((await page.context().cookies()).some((c) => c.name === 'sallyport_session')).toBe(false);
    await screenshot(page, '07-signed-out-again');

    // The old cookie value is dead on the server, not just forgotten by the browser.
    const replay = await fetch(`${gw.url}/api/me`, { headers: { cookie } });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: { code: string } }).error.code).toBe('session_expired');
    const ledger = await gw.gw.ledger.list({ actor: 'bob' });
    expect(ledger.map((e) => e.kind)).toEqual(
      expect.arrayContaining(['console.signed_in', 'console.signed_out']),
    );

    // After an explicit sign-out the provider asks for the password again (prompt=login).
    await page.reload();
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.locator('#username').waitFor();
    expect(new URL(page.url()).origin).toBe(new URL(gw.issuer).origin);
    expect(consoleProblems(problems)).toEqual([]);
  });

  it('refuses cookie-authenticated writes and sockets from another origin', async () => {
    const { page } = await newPage();
    await signInThroughProvider(page, gw.url, 'carol');
    const cookie = await sessionCookie(page);
    const body = {
      id: 'csrf-probe',
      kind: 'ssh',
      host: '10.9.9.9',
      user: 'x',
      hostKey: TARGETS[2]!.kind === 'ssh' ? TARGETS[2]!.hostKey : '',
    };
    const post = (headers: Record<string, string>) =>
      fetch(`${gw.url}/api/admin/targets`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });

    const origins: Array<Record<string, string>> = [
      { origin: 'http://evil.example' },
      {},
      { origin: new URL(gw.issuer).origin },
    ];
    for (const headers of origins) {
      const res = await post(headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('csrf');
    }
    const viaBrowser = await page.request.post(`${gw.url}/api/admin/targets`, {
      headers: { origin: 'https://attacker.example' },
      data: body,
    });
    expect(viaBrowser.status()).toBe(403);
    expect((await viaBrowser.json()).error.code).toBe('csrf');
    expect(await gw.gw.targets.get('csrf-probe')).toBeUndefined();

    // The console itself (same origin) writes with the same cookie.
    const created = await page.evaluate(async (b) => {
      const res = await fetch('/api/admin/targets', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
      return res.status;
    }, body);
    expect(created).toBe(201);
    const events = await gw.gw.ledger.list({ targetId: 'csrf-probe' });
    expect(events.map((e) => `${e.kind}:${e.actor}`)).toEqual(['target.created:carol']);

    // Its event socket authenticates with the cookie too.
    // (Browser code as a string: the e2e project compiles without the DOM library.)
    const hello = await page.evaluate<string>(`new Promise((resolve, reject) => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/api/ws');
      ws.onmessage = (e) => { ws.close(); resolve(String(e.data)); };
      ws.onerror = () => reject(new Error('socket error'));
    })`);
    expect(JSON.parse(hello)).toMatchObject({ type: 'hello', me: { username: 'carol', roles: ['admin'] } });

    // A page on another loopback port is "same-site" for SameSite=Strict, so the cookie goes along:
    // only the Origin check stops it from signing carol out or opening her event socket.
    const attacker = await startAttackerPage(gw.url);
    try {
      await page.goto(attacker.url);
      const outcome = await page.evaluate<string>('window.attack');
      expect(outcome).toBe('socket refused');
    } finally {
      await new Promise<void>((resolve) => attacker.server.close(() => resolve()));
    }
    const me = await fetch(`${gw.url}/api/me`, { headers: { cookie } });
    expect(me.status).toBe(200);
  });

  it('serves the console with a strict CSP and falls back to it for client-side routes only', async () => {
    const root = await fetch(`${gw.url}/`);
    expect(root.status).toBe(200);
    expect(root.headers.get('content-security-policy')).toBe(CSP);
    expect(root.headers.get('x-content-type-options')).toBe('nosniff');
    expect(root.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await root.text();
    expect(html).toContain('<div id="root">');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);

    const deep = await fetch(`${gw.url}/targets/orders-db`, { headers: { accept: 'text/html' } });
    expect(deep.status).toBe(200);
    expect(deep.headers.get('content-security-policy')).toBe(CSP);
    expect(await deep.text()).toBe(html);

    const api = await fetch(`${gw.url}/api/nope`, { headers: { accept: 'text/html' } });
    expect(api.status).toBe(404);
    expect(api.headers.get('content-type')).toContain('application/json');
    const asset = await fetch(`${gw.url}/missing.js`);
    expect(asset.status).toBe(404);

    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    const js = await fetch(`${gw.url}${script}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('content-security-policy')).toBeNull();
    expect(js.headers.get('cache-control')).toContain('immutable');

    const login = await fetch(`${gw.url}/auth/login`, { redirect: 'manual' });
    expect(login.status).toBe(302);
    const to = new URL(login.headers.get('location') ?? '');
    expect(to.origin).toBe(new URL(gw.issuer).origin);
    expect(Object.fromEntries(to.searchParams)).toMatchObject({
      client_id: 'sallyport-console',
      response_type: 'code',
      scope: 'openid profile email groups',
      redirect_uri: `${gw.url}/auth/callback`,
      code_challenge_method: 'S256',
    });
    expect(login.headers.get('set-cookie')).toMatch(
      /^sallyport_login=v1\.[^;]+; Path=\/auth; HttpOnly; SameSite=Lax/,
    );

    // A callback without the sign-in cookie (or with a forged state) does not sign anyone in.
    const forged = await fetch(`${gw.url}/auth/callback?code=abc&state=${to.searchParams.get('state')}`, {
      redirect: 'manual',
    });
    expect(forged.status).toBe(302);
    expect(forged.headers.get('location')).toBe('/?signin_error=expired');
    expect(forged.headers.getSetCookie().some((c) => c.startsWith('sallyport_session='))).toBe(false);
  });
});

/** A page on another loopback port that tries a no-cors sign-out and the event socket with the victim's cookie. */
async function startAttackerPage(gatewayUrl: string): Promise<{ url: string; server: Server }> {
  const wsUrl = `${gatewayUrl.replace(/^http/, 'ws')}/api/ws`;
  const script = `window.attack = (async () => {
  await fetch(${JSON.stringify(`${gatewayUrl}/auth/logout`)}, { method: 'POST', mode: 'no-cors', credentials: 'include' }).catch(() => {});
  return await new Promise((resolve) => {
    const ws = new WebSocket(${JSON.stringify(wsUrl)});
    ws.onmessage = (e) => resolve('socket answered: ' + e.data);
    ws.onclose = () => resolve('socket refused');
  });
})();`;
  const server = createServer((req, res) => {
    if (req.url === '/attack.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      return;
    }
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end('<!doctype html><script src="/attack.js"></script>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}
