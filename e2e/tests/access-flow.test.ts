// The access lifecycle in the web console, in Chromium against a real gateway: alice requests
// prod access from the targets list, bob (his own browser context and sign-in) sees it arrive
// live and approves, alice's tab opens by itself, she revokes; carol audits and verifies the
// ledger; bob denies a second request and alice reads why.
import { type RunningPostgres, startPostgres } from '@sallyport/gateway-server/devstack';
import type { TestGateway } from '@sallyport/gateway-server/rig';
import type { TargetInput } from '@sallyport/protocol';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessState,
  consoleProblems,
  focusedId,
  inboxBadge,
  markDocument,
  sameDocument,
  waitLive,
} from '../support/access';
import { launchBrowser, newUserContext, type PageProblem, screenshot, watchPage } from '../support/browser';
import { type DemoUser, signInThroughProvider, startConsoleGateway } from '../support/console';

/** The prod database is a real PostgreSQL, so an approved grant opens a working SQL tab. */
const targets = (pg: RunningPostgres): TargetInput[] => [
  {
    id: 'orders-db',
    kind: 'postgres',
    name: 'Orders database',
    host: pg.host,
    port: pg.port,
    user: pg.user,
    database: pg.database,
    tls: 'disable',
    credential: { password: pg.password },
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
];

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
      levels: ['read' as const, 'write' as const],
      maxDuration: '2h',
      approval: { approvers: { groups: ['approvers'] }, count: 1 },
      breakGlass: true,
    },
  ],
};

const REASON = 'reconcile yesterday orders for the finance report';
const DENY_REASON = 'use the read replica for reports, not the primary';

let pg: RunningPostgres;
let gw: TestGateway;
let browser: Browser;
const contexts: BrowserContext[] = [];
const seen: Record<string, PageProblem[]> = {};
let alice: Page;
let bob: Page;
let carol: Page;

async function signedIn(user: DemoUser): Promise<Page> {
  const context = await newUserContext(browser);
  contexts.push(context);
  const page = await context.newPage();
  seen[user] = watchPage(page);
  await signInThroughProvider(page, gw.url, user);
  await waitLive(page);
  return page;
}

const row = (page: Page, id: string) => page.locator(`tr[data-target-id="${id}"]`);
const dialog = (page: Page) => page.getByTestId('request-dialog');
const nav = (page: Page, name: RegExp) =>
  page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });

/** Double-clicks a target row on its name cell (the label chips have their own click). */
async function doubleClickTarget(page: Page, id: string): Promise<void> {
  await row(page, id).locator('td').first().dblclick();
}

/**
 * What the open-tab seam (openTargetTab in renderer/src/state/access.ts) shows for a target:
 * the session tab once the tab area is plugged in, or the "Connecting…" placeholder before.
 */
const openedTab = (page: Page, id: string) =>
  page.locator(
    `.wtab-active[data-uri="/targets/${id}/sql"], [data-testid="open-tab"][data-target-id="${id}"]`,
  );

/** Back to the targets list (the home tab of the tab area, when a session tab is in front). */
async function showTargets(page: Page): Promise<void> {
  await nav(page, /^Targets$/).click();
  const home = page.getByRole('tab', { name: 'Targets' });
  if ((await home.count()) > 0) await home.click();
  await row(page, 'orders-db').waitFor();
}

beforeAll(async () => {
  [pg, browser] = await Promise.all([startPostgres({ seedDemo: true }), launchBrowser()]);
  gw = await startConsoleGateway({ config: { targets: targets(pg), access: ACCESS } });
});
afterAll(async () => {
  await Promise.all(contexts.map((c) => c.close()));
  await browser?.close();
  await gw?.stop();
  await pg?.stop();
});

describe('access flow in the web console', () => {
  it('1. alice double-clicks the prod target, the dialog opens prefilled and she asks with a reason', async () => {
    [alice, bob] = await Promise.all([signedIn('alice'), signedIn('bob')]);
    await markDocument(alice);
    await markDocument(bob);
    expect(await inboxBadge(bob)).toBeNull();

    await expect.poll(() => accessState(alice, 'orders-db')).toBe('none');
    await doubleClickTarget(alice, 'orders-db');
    await dialog(alice).waitFor();
    await alice.getByTestId('policy-summary').waitFor();
    expect(await dialog(alice).getByRole('heading', { level: 2 }).textContent()).toBe(
      'Request access to Orders database',
    );
    // Prefilled from the policy: the first level the rule allows, 30 minutes, an empty focused reason.
    expect(await alice.locator('#request-level').inputValue()).toBe('read');
    expect(await alice.locator('#request-duration').inputValue()).toBe('30m');
    expect(await alice.locator('#request-reason').inputValue()).toBe('');
    expect(await focusedId(alice)).toBe('request-reason');
    expect(await alice.getByTestId('max-duration').textContent()).toBe('2h');
    expect(await alice.getByTestId('approval').textContent()).toBe('1 approval from group approvers');
    expect(await alice.getByLabel('Duration').locator('option').allTextContents()).toEqual([
      '15m',
      '30m',
      '1h',
      '2h',
    ]);
    expect(await dialog(alice).getByText('Break glass', { exact: true }).isVisible()).toBe(true);

    // Too short a reason is caught inline, before anything is sent.
    await alice.locator('#request-reason').fill('need it');
    await dialog(alice).getByRole('button', { name: 'Request access' }).click();
    expect(await alice.locator('#request-reason-hint').textContent()).toContain('at least 10 characters');
    expect(await alice.locator('#request-reason').getAttribute('aria-invalid')).toBe('true');

    await alice.locator('#request-reason').fill(REASON);
    await alice.locator('#request-ticket').fill('FIN-204');
    await screenshot(alice, 'access-01-request-dialog');

    await dialog(alice).getByRole('button', { name: 'Request access' }).click();
    const waiting = alice.getByTestId('waiting');
    await waiting.waitFor();
    expect(await waiting.textContent()).toContain('Waiting for approval from anyone in group approvers');
    expect(await dialog(alice).getByRole('button', { name: 'Cancel request' }).isVisible()).toBe(true);
    await expect.poll(() => accessState(alice, 'orders-db')).toBe('pending');
    await screenshot(alice, 'access-02-waiting-for-approval');
  });

  it('2. bob sees the request arrive in his inbox without reloading, opens it and approves', async () => {
    await expect.poll(() => inboxBadge(bob), { timeout: 10_000 }).toBe('1');
    expect(await sameDocument(bob)).toBe(true);
    await screenshot(bob, 'access-03-inbox-badge-live');

    await nav(bob, /^Inbox/).click();
    const item = bob.locator('.inbox-item[data-request-id]');
    await item.waitFor();
    expect(await item.textContent()).toContain('alice');
    await item.click();
    const detail = bob.getByTestId('inbox-detail');
    await detail.waitFor();
    const text = await detail.textContent();
    expect(text).toContain('alice asks for read access');
    expect(text).toContain('Orders database');
    expect(text).toContain('30m');
    expect(text).toContain('FIN-204');
    expect(await detail.getByTestId('request-reason').textContent()).toBe(REASON);
    expect(await detail.locator('.flag-prod').textContent()).toBe('production');
    expect(await detail.locator('.tag-prod').textContent()).toBe('env=prod');
    await screenshot(bob, 'access-04-inbox-request-detail');

    await detail.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => inboxBadge(bob)).toBeNull();
    await bob.getByTestId('inbox-empty').waitFor();
    expect(await sameDocument(bob)).toBe(true);
  });

  it('3. alice’s view turns active by itself and the session tab opens', async () => {
    const opened = openedTab(alice, 'orders-db');
    await opened.waitFor({ timeout: 10_000 });
    expect(await dialog(alice).count()).toBe(0);
    await expect.poll(() => accessState(alice, 'orders-db')).toBe('active');
    // A real session tab connects through the gateway under the new grant.
    if ((await opened.getAttribute('data-status')) !== null) {
      await expect.poll(() => opened.getAttribute('data-status'), { timeout: 20_000 }).toBe('connected');
    }
    expect(await sameDocument(alice)).toBe(true);
    await screenshot(alice, 'access-05-approved-tab-opens');
  });

  it('4. alice sees the live countdown in My access and revokes with a reason', async () => {
    await nav(alice, /^My access$/).click();
    const grant = alice.getByTestId('active-grants').locator('tr[data-target-id="orders-db"]');
    await grant.waitFor();
    const countdown = grant.getByTestId('countdown');
    const before = await countdown.textContent();
    expect(before).toMatch(/^(29|30):\d\d$/);
    await expect.poll(() => countdown.textContent(), { timeout: 5_000 }).not.toBe(before);
    expect(await alice.getByTestId('request-history').textContent()).toContain('by bob');
    await screenshot(alice, 'access-06-my-access-countdown');

    await grant.getByRole('button', { name: 'Revoke' }).click();
    const revoke = alice.getByTestId('revoke-dialog');
    await revoke.waitFor();
    expect(await focusedId(alice)).toBe('revoke-reason');
    await revoke.getByRole('button', { name: 'Revoke now' }).click();
    expect(await alice.locator('#revoke-reason-hint').textContent()).toContain('Say why you revoke it');
    await alice.locator('#revoke-reason').fill('finished the reconciliation');
    await revoke.getByRole('button', { name: 'Revoke now' }).click();
    await revoke.waitFor({ state: 'detached' });

    const ended = alice.getByTestId('ended-grants').locator('tr[data-target-id="orders-db"]');
    await ended.waitFor();
    expect(await ended.textContent()).toContain('finished the reconciliation');
    expect(await ended.getAttribute('data-status')).toBe('revoked');
    expect(await alice.getByTestId('active-grants').locator('tr[data-target-id]').count()).toBe(0);
    await expect.poll(() => accessState(alice, 'orders-db')).toBe('none');
    await screenshot(alice, 'access-07-revoked');
  });

  it('5. carol filters the audit ledger by request.* and verifies it intact', async () => {
    carol = await signedIn('carol');
    await nav(carol, /^Audit$/).click();
    await carol.getByTestId('audit').waitFor();
    await carol.locator('#audit-kind').fill('request.*');
    await carol.getByRole('button', { name: 'Apply' }).click();
    await expect
      .poll(async () => {
        const kinds = await carol
          .locator('tr[data-kind]')
          .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-kind')));
        return kinds.length > 0 && kinds.every((k) => k?.startsWith('request.')) ? kinds : null;
      })
      .toEqual(expect.arrayContaining(['request.created', 'request.approved']));

    await carol.getByRole('button', { name: 'Verify' }).click();
    const result = carol.getByTestId('verify-result');
    await result.waitFor();
    expect(await result.getAttribute('data-ok')).toBe('true');
    const verified = await gw.gw.ledger.verify();
    expect(verified.ok).toBe(true);
    expect(await result.textContent()).toMatch(/^Intact: \d+ events/);
    await screenshot(carol, 'access-08-audit-verified');
  });

  it('6. bob denies a second request with a reason and alice sees why', async () => {
    await showTargets(alice);
    await doubleClickTarget(alice, 'orders-db');
    await alice.getByTestId('policy-summary').waitFor();
    await alice.locator('#request-reason').fill('export the March orders for the auditors');
    await alice.keyboard.press('Control+Enter');
    await alice.getByTestId('waiting').waitFor();

    await expect.poll(() => inboxBadge(bob), { timeout: 10_000 }).toBe('1');
    await bob.locator('.inbox-item[data-request-id]').click();
    const detail = bob.getByTestId('inbox-detail');
    await detail.getByRole('button', { name: 'Deny…' }).click();
    expect(await focusedId(bob)).toBe('deny-reason');
    await detail.getByRole('button', { name: 'Deny request' }).click();
    expect(await bob.getByTestId('deny-hint').textContent()).toContain('Say why you deny it');
    expect(await bob.locator('#deny-reason').getAttribute('aria-invalid')).toBe('true');
    await screenshot(bob, 'access-09-deny-needs-reason');

    await bob.locator('#deny-reason').fill(DENY_REASON);
    await detail.getByRole('button', { name: 'Deny request' }).click();
    await expect.poll(() => inboxBadge(bob)).toBeNull();

    const denied = alice.getByTestId('denied');
    await denied.waitFor({ timeout: 10_000 });
    expect(await denied.textContent()).toContain('Denied by bob');
    expect(await alice.getByTestId('denial-reason').textContent()).toBe(DENY_REASON);
    await expect.poll(() => accessState(alice, 'orders-db')).toBe('none');
    expect(await sameDocument(alice)).toBe(true);
    await screenshot(alice, 'access-10-denied-with-reason');

    await dialog(alice).getByRole('button', { name: 'Close' }).last().click();
    await nav(alice, /^My access$/).click();
    const history = alice.getByTestId('request-history').locator('tr[data-status="denied"]');
    await history.waitFor();
    expect(await history.getByTestId('decision-reason').textContent()).toBe(DENY_REASON);
  });

  it('7. alice takes break-glass access; it stays in bob’s inbox until he reviews it with what he found', async () => {
    // Bob has his inbox open when it happens: the item arrives live.
    await nav(bob, /^Inbox/).click();
    await bob.getByTestId('inbox-empty').waitFor();
    const token = await gw.token('alice');
    const taken = await gw.client(token).requestAccess({
      targetId: 'orders-db',
      level: 'read',
      duration: '15m',
      reason: 'orders page down INC-31, checking the orders table',
      breakGlass: true,
    });
    if (taken.outcome !== 'granted') return expect.unreachable('break-glass grants at once');

    // Live first, then from the gateway after a reload: it is not lost with the page.
    const alertItem = bob.locator('.inbox-item-alert');
    await alertItem.waitFor({ timeout: 10_000 });
    await bob.reload();
    await waitLive(bob);
    await alertItem.waitFor();
    expect(await alertItem.textContent()).toContain('INC-31');
    await alertItem.click();
    const detail = bob.getByTestId('inbox-detail');
    await detail.getByRole('button', { name: 'Mark reviewed' }).click();
    expect(await bob.getByTestId('review-note-hint').textContent()).toContain('Say what you found');
    await screenshot(bob, 'access-11-break-glass-review');

    await bob.locator('#review-note').fill('read the recording: two SELECTs on orders, justified by INC-31');
    await detail.getByRole('button', { name: 'Mark reviewed' }).click();
    await expect.poll(() => alertItem.count(), { timeout: 10_000 }).toBe(0);

    await nav(alice, /^My access$/).click();
    const reviewed = alice.getByTestId('grant-reviewed');
    await reviewed.waitFor({ timeout: 10_000 });
    expect(await reviewed.textContent()).toBe('break-glass · reviewed by bob');
    await screenshot(alice, 'access-12-break-glass-reviewed');
    const ledger = await gw.gw.ledger.list({ kind: 'grant.reviewed' });
    expect(ledger.map((e) => [e.actor, e.data.grantId])).toEqual([['bob', taken.grant.id]]);

    // Another one, reviewed by dave while bob has it open: bob's copy goes, and he is told who.
    const again = await gw.client(token).requestAccess({
      targetId: 'orders-db',
      level: 'write',
      duration: '10m',
      reason: 'orders page down again INC-32, fixing a stuck row',
      breakGlass: true,
    });
    if (again.outcome !== 'granted') return expect.unreachable('break-glass grants at once');
    await nav(bob, /^Inbox/).click();
    await alertItem.waitFor({ timeout: 10_000 });
    await alertItem.click();
    await bob.locator('#review-note').fill('half-written note');
    await gw.client(await gw.token('dave')).reviewGrant(again.grant.id, 'looked at it from the pager');
    await expect.poll(() => alertItem.count(), { timeout: 10_000 }).toBe(0);
    await expect
      .poll(() => bob.getByRole('status').allTextContents(), { timeout: 10_000 })
      .toContainEqual(expect.stringContaining('dave reviewed alice’s break-glass access.'));
  });

  it('leaves no console errors on any of the three consoles', () => {
    for (const [user, problems] of Object.entries(seen)) {
      expect(consoleProblems(problems, gw.url), user).toEqual([]);
    }
  });
});
