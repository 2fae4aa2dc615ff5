// The end-to-end journey, as one run in Chromium against a real gateway, the provider's
// real login page, an OpenSSH sshd and a PostgreSQL with the demo customers:
//   1. alice (developer) double-clicks the prod server and asks for access with a reason;
//   2. dave (approver, his own browser context) sees the request arrive live and approves;
//   3. alice's terminal opens by itself, a command runs, a blocked one shows the block;
//   4. the prod database the same way, then her SQL tab: masked e-mails and cards; DELETE
//      without WHERE blocked (a guardrail rule configured for prod); a reviewed statement waits
//      and dave denies it with a reason; another waits, dave approves it from his inbox (the
//      exact SQL), it runs;
//   5. the grants expire and both tabs say so;
//   6. the shell session is replayed from Recordings.
// The grants are short on purpose: the prod rule allows at most GRANT_SECONDS (a real config
// value; the policy accepts any positive duration), so step 5 waits for real expiries. Each grant
// is asked for just before the step that uses it, so that step has the grant's whole time.
import {
  demoCustomers,
  type RunningPostgres,
  type RunningSshd,
  startPostgres,
  startSshd,
} from '@sallyport/gateway-server/devstack';
import type { TestGateway } from '@sallyport/gateway-server/rig';
import type { TargetInput } from '@sallyport/protocol';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessState,
  consoleProblems,
  dismissToasts,
  doubleClickTarget,
  fillAndSubmitRequest,
  inboxBadge,
  markDocument,
  sameDocument,
  waitLive,
} from '../support/access';
import { launchBrowser, newUserContext, type PageProblem, screenshot, watchPage } from '../support/browser';
import { type DemoUser, signInThroughProvider, startConsoleGateway } from '../support/console';
import { runEnded, runSql, terminalText, typeInTerminal } from '../support/sessions';

/** Each grant covers one step (3 or 4, a few seconds) on a busy machine; step 5 waits for the end. */
const GRANT_SECONDS = 30;
const SSH_REASON = 'restart the stuck invoice worker, incident INC-4711';
const SQL_REASON = 'check the customers the invoice worker skipped, INC-4711';
const DENY_REASON = 'never rename every customer; change the test rows by id instead';
const DELETE_SQL = 'delete from customers';
const DENIED_SQL = "update customers set name = 'x'";
const REVIEWED_SQL = 'update customers set country = upper(country) returning id, name, email';
const customers = demoCustomers();

let sshd: RunningSshd;
let pgServer: RunningPostgres;
let gw: TestGateway;
let browser: Browser;
const contexts: BrowserContext[] = [];
const seen: Record<string, PageProblem[]> = {};
let alice: Page;
let dave: Page;
const t0 = Date.now();
const mark = (step: string) => console.log(`journey ${step}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

async function signedIn(user: DemoUser): Promise<Page> {
  const context = await newUserContext(browser);
  contexts.push(context);
  const page = await context.newPage();
  seen[user] = watchPage(page);
  await signInThroughProvider(page, gw.url, user);
  await waitLive(page);
  return page;
}

const nav = (page: Page, name: RegExp) =>
  page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });
const activePanel = (page: Page): Locator => page.locator('.workspace-tab:not([hidden])');
const tabOf = (page: Page, uri: string) => page.locator(`.wtab[data-uri="${uri}"]`);
const SSH_URI = '/targets/web-prod/ssh';
const SQL_URI = '/targets/shop-prod-db/sql';

/** Dave opens the held statement in his inbox; returns its detail pane once it shows `sql`. */
async function openHeldStatement(sql: string): Promise<Locator> {
  await expect.poll(() => inboxBadge(dave), { timeout: 15_000 }).toBe('1');
  await dave.locator('.inbox-item[data-review-id]').click();
  const detail = dave.getByTestId('inbox-detail');
  await expect.poll(() => detail.getByTestId('review-text').textContent()).toBe(sql);
  return detail;
}

beforeAll(async () => {
  [sshd, pgServer, browser] = await Promise.all([
    startSshd(),
    startPostgres({ seedDemo: true }),
    launchBrowser(),
  ]);
  const targets: TargetInput[] = [
    {
      id: 'web-prod',
      kind: 'ssh',
      name: 'Web server (prod)',
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      hostKey: sshd.hostPublicKey,
      credential: { privateKey: sshd.clientPrivateKey },
      labels: { env: 'prod', team: 'web' },
    },
    {
      id: 'shop-prod-db',
      kind: 'postgres',
      name: 'Shop database (prod)',
      host: pgServer.host,
      port: pgServer.port,
      user: pgServer.user,
      database: pgServer.database,
      tls: 'disable',
      credential: { password: pgServer.password },
      labels: { env: 'prod', team: 'payments' },
    },
  ];
  gw = await startConsoleGateway({
    config: {
      targets,
      access: {
        rules: [
          {
            name: 'developers-prod',
            requesters: { groups: ['developers'] },
            targets: { labels: { env: 'prod' } },
            levels: ['shell', 'write'],
            maxDuration: `${GRANT_SECONDS}s`,
            approval: { approvers: { groups: ['approvers'] }, count: 1 },
          },
        ],
        // Warn shortly before the end rather than at once (the default is 5 minutes ahead).
        expiryWarning: '15s',
      },
      guardrails: {
        sql: {
          rules: [
            {
              // On prod, emptying a table is not even up for review.
              name: 'prod-no-delete-all',
              action: 'block',
              message: 'Deleting every row is not allowed on production: delete by key.',
              match: { tags: ['delete-without-where'] },
              targets: { labels: { env: 'prod' } },
            },
          ],
        },
      },
    },
  });
  [alice, dave] = await Promise.all([signedIn('alice'), signedIn('dave')]);
  await Promise.all([markDocument(alice), markDocument(dave)]);
  mark('signed in');
});

afterAll(async () => {
  await Promise.all(contexts.map((c) => c.close()));
  await browser?.close();
  await gw?.stop();
  await Promise.all([sshd?.stop(), pgServer?.stop()]);
});

/** Dave approves alice's pending request on `name` from his inbox (live, no reload). */
async function approveInInbox(name: string, reason: string, level: string, shot?: string): Promise<void> {
  await expect.poll(() => inboxBadge(dave), { timeout: 15_000 }).toBe('1');
  expect(await sameDocument(dave)).toBe(true);
  await nav(dave, /^Inbox/).click();
  const item = dave.locator('.inbox-item[data-request-id]', { hasText: name });
  await item.click();
  const detail = dave.getByTestId('inbox-detail');
  await expect.poll(() => detail.getByTestId('request-reason').textContent()).toBe(reason);
  const text = await detail.textContent();
  expect(text).toContain(`alice asks for ${level} access`);
  expect(text).toContain(name);
  expect(await detail.locator('.flag-prod').textContent()).toBe('production');
  if (shot) {
    await dismissToasts(dave);
    await screenshot(dave, shot);
  }
  await detail.getByRole('button', { name: 'Approve' }).click();
  await item.waitFor({ state: 'detached' });
  await expect.poll(() => inboxBadge(dave)).toBeNull();
}

// Each grant is asked for just before its step, so each step has a whole grant's time.
describe('the journey of issue 6', () => {
  it('1. alice double-clicks the prod server and requests access with a reason', async () => {
    expect(await inboxBadge(dave)).toBeNull();
    await expect.poll(() => accessState(alice, 'web-prod')).toBe('none');

    await doubleClickTarget(alice, 'web-prod');
    const durations = await fillAndSubmitRequest(alice, {
      level: 'shell',
      reason: SSH_REASON,
      beforeSubmit: () => screenshot(alice, 'journey-01-request-dialog'),
    });
    // The rule's maximum is the only duration on offer.
    expect(durations).toEqual([`${GRANT_SECONDS}s`]);
    expect(await alice.getByTestId('waiting').textContent()).toContain('group approvers');
    await expect.poll(() => accessState(alice, 'web-prod')).toBe('pending');
    await screenshot(alice, 'journey-01-waiting-for-approval');
    mark('1');
  });

  it('2. dave sees the request arrive in his inbox without reloading, and approves it', async () => {
    await approveInInbox('Web server (prod)', SSH_REASON, 'shell', 'journey-02-inbox-request');
    await screenshot(dave, 'journey-02-approved');
    mark('2');
  });

  it('3. alice’s SSH tab opens by itself, a command runs and a blocked command shows the block', async () => {
    const ssh = activePanel(alice);
    await alice.locator(`.wtab-active[data-uri="${SSH_URI}"]`).waitFor({ timeout: 15_000 });
    expect(await alice.getByTestId('request-dialog').count()).toBe(0);
    expect(await sameDocument(alice)).toBe(true);
    await ssh.locator('.session-ssh .conn-ready').waitFor({ timeout: 15_000 });
    await expect.poll(() => terminalText(ssh), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);

    await typeInTerminal(alice, ssh, 'echo journey-$((6*7))\r');
    await expect.poll(() => terminalText(ssh), { timeout: 15_000 }).toContain('journey-42');
    // Code piped into a shell: blocked by the default rule pipe-to-shell; nothing reaches sh.
    await typeInTerminal(alice, ssh, "printf 'echo ran-%s\\n' $((6*7)) | sh\r");
    const blocked = ssh.locator('[data-testid="gateway-notice"][data-code="blocked"]');
    await blocked.waitFor({ timeout: 15_000 });
    expect(await blocked.textContent()).toMatch(/Blocked by the gateway[\s\S]*pipe-to-shell/);
    // The shell is still usable, and the blocked line never ran.
    await typeInTerminal(alice, ssh, 'echo still-here-$((2*21))\r');
    await expect.poll(() => terminalText(ssh), { timeout: 15_000 }).toContain('still-here-42');
    expect(await terminalText(ssh)).not.toContain('ran-42');
    await dismissToasts(alice);
    await screenshot(alice, 'journey-03-ssh-blocked');
    mark('3');
  });

  it('4. the SQL tab: masking, DELETE without WHERE blocked, reviewed statements denied and approved', async () => {
    // The database the same way: double-click, a reason, dave approves, the SQL tab opens by itself.
    await alice.getByRole('tab', { name: 'Targets' }).click();
    await doubleClickTarget(alice, 'shop-prod-db');
    await fillAndSubmitRequest(alice, { level: 'write', reason: SQL_REASON });
    await approveInInbox('Shop database (prod)', SQL_REASON, 'write');
    await alice.locator(`.wtab-active[data-uri="${SQL_URI}"]`).waitFor({ timeout: 15_000 });
    const sql = activePanel(alice);
    await dismissToasts(alice);
    await sql.locator('.session-sql .conn-ready').waitFor({ timeout: 15_000 });
    await sql.locator('.monaco-editor').waitFor();

    // Masked e-mails and card numbers, marked as masked.
    expect(
      await runSql(alice, sql, 'select name, email, card_number from customers order by id limit 10'),
    ).toBe('complete');
    const grid = sql.getByTestId('result-grid');
    await expect.poll(() => grid.getAttribute('data-rows')).toBe('10');
    expect(await grid.locator('td[data-masked="true"]').count()).toBe(20);
    const shown = await grid.locator('tbody').innerText();
    expect(shown).toContain(customers[0]!.name);
    for (const c of customers.slice(0, 10)) {
      expect(shown).not.toContain(c.email);
      expect(shown).not.toContain(c.cardNumber);
    }
    await screenshot(alice, 'journey-04a-sql-masked');

    // DELETE without WHERE: blocked outright on prod by the configured rule; nothing runs.
    expect(await runSql(alice, sql, DELETE_SQL)).toBe('blocked');
    const blocked = sql.locator('[data-testid="sql-blocked"][data-code="rule"]');
    await blocked.waitFor();
    expect(await blocked.textContent()).toContain('Blocked by the gateway');
    expect(await blocked.locator('.rule').textContent()).toBe('prod-no-delete-all');
    expect(await blocked.textContent()).toContain('nothing in this run was executed');
    await screenshot(alice, 'journey-04b-sql-delete-blocked');

    // An UPDATE without WHERE is held for review (built-in rule); nothing runs while it waits.
    expect(await runSql(alice, sql, DENIED_SQL)).toBe('review');
    const pending = sql.locator('[data-testid="sql-review"][data-review-status="pending"]');
    await pending.waitFor();
    expect(await pending.locator('.sql-msg-stmt').textContent()).toBe(DENIED_SQL);
    expect(await pending.textContent()).toContain('update-without-where');
    await expect
      .poll(() => pending.getByTestId('review-approvers').textContent())
      .toBe('anyone in group approvers');
    expect(await sql.getByRole('button', { name: 'Cancel' }).isVisible()).toBe(true);
    expect(await sql.getByRole('button', { name: /^▶ Run/ }).isDisabled()).toBe(true);

    // … and dave denies it from his inbox, which shows the exact SQL.
    let detail = await openHeldStatement(DENIED_SQL);
    expect(await detail.textContent()).toContain('alice wants to run this on');
    // What the approver weighs: the tables and PostgreSQL's estimate of the rows it would change.
    expect(await detail.locator('[data-detail="relations"]').textContent()).toBe('customers');
    expect(await detail.locator('[data-detail="explain"]').textContent()).toMatch(
      /^≈[\d,]+ rows · statement 1 \(UpdateStmt\)$/,
    );
    await detail.getByRole('button', { name: 'Deny…' }).click();
    await dave.locator('#deny-reason').fill(DENY_REASON);
    await dismissToasts(dave);
    await screenshot(dave, 'journey-04c-inbox-deny-update');
    await detail.getByRole('button', { name: 'Deny review' }).click();
    await expect.poll(() => inboxBadge(dave)).toBeNull();

    expect(await runEnded(sql)).toBe('blocked');
    const denied = sql.locator('[data-testid="sql-blocked"][data-code="review_denied"]');
    await denied.waitFor();
    expect(await denied.textContent()).toContain('Denied by dave');
    expect(await denied.getByTestId('review-reason').textContent()).toBe(DENY_REASON);
    expect(await denied.locator('.sql-msg-stmt').textContent()).toBe(DENIED_SQL);
    await screenshot(alice, 'journey-04d-sql-update-denied');

    // A reviewed statement waits, dave approves it (the exact SQL in his inbox), and it runs.
    expect(await runSql(alice, sql, REVIEWED_SQL)).toBe('review');
    await sql.locator('[data-testid="sql-review"][data-review-status="pending"]').waitFor();
    detail = await openHeldStatement(REVIEWED_SQL);
    expect(await detail.textContent()).toContain('update-without-where');
    await dismissToasts(dave);
    await screenshot(dave, 'journey-04e-inbox-review-sql');
    await detail.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => inboxBadge(dave)).toBeNull();

    expect(await runEnded(sql)).toBe('complete');
    const approved = sql.locator('[data-testid="sql-review"][data-review-status="approved"]');
    await approved.waitFor();
    expect(await approved.getByTestId('review-approved-by').textContent()).toBe('Approved by dave');
    // Every customer is still there and unrenamed (neither refused statement ran), e-mails masked.
    await expect.poll(() => grid.getAttribute('data-rows')).toBe(String(customers.length));
    expect(await sql.getByTestId('run-status').textContent()).toContain(`UPDATE ${customers.length} rows`);
    const updated = await grid.locator('tbody').innerText();
    for (const c of customers.slice(0, 10)) {
      expect(updated).toContain(c.name);
      expect(updated).not.toContain(c.email);
    }
    expect(await grid.locator('td[data-masked="true"]').count()).toBeGreaterThan(0);
    await screenshot(alice, 'journey-04f-sql-approved-ran');

    // The database grant outlived the step (step 5 waits for its end).
    expect(await sql.getByTestId('session-closed').count()).toBe(0);
    mark('4');
  });

  it('5. the grants expire and both tabs say so', async () => {
    // The shell's grant has usually ended during step 4; the database's ends GRANT_SECONDS after
    // its approval.
    const waitMs = GRANT_SECONDS * 1000 + 20_000;
    await tabOf(alice, SSH_URI).getByRole('tab').click();
    const ssh = activePanel(alice);
    const expired = ssh.locator('[data-testid="gateway-notice"][data-code="expired"]');
    await expired.waitFor({ timeout: waitMs });
    expect(await expired.textContent()).toMatch(/Grant expired[\s\S]*expired/);
    // The gateway's line in the terminal itself, apart from the shell's output.
    await expect.poll(() => terminalText(ssh)).toContain('[sallyport] Your access grant has expired');
    await ssh.getByTestId('session-closed').waitFor();
    await expect.poll(() => tabOf(alice, SSH_URI).getAttribute('data-status')).toBe('grant-ended');
    await dismissToasts(alice);
    await screenshot(alice, 'journey-05a-ssh-expired');

    await tabOf(alice, SQL_URI).getByRole('tab').click();
    const sql = activePanel(alice);
    const closed = sql.getByTestId('session-closed');
    await closed.waitFor({ timeout: waitMs });
    expect(await closed.getAttribute('data-code')).toBe('grant_ended');
    expect(await closed.textContent()).toContain('Your access grant has expired');
    await expect.poll(() => tabOf(alice, SQL_URI).getAttribute('data-status')).toBe('grant-ended');
    await expect.poll(() => accessState(alice, 'shop-prod-db')).toBe('none');
    await screenshot(alice, 'journey-05b-sql-expired');
    mark('5');
  });

  it('6. the SSH session is replayed from Recordings', async () => {
    await alice.getByRole('tab', { name: 'Recordings' }).click();
    const sshRow = alice.locator('tr[data-kind="ssh"]', { hasText: 'web-prod' }).first();
    await expect
      .poll(
        async () => {
          await alice.getByRole('button', { name: 'Refresh' }).click();
          return sshRow.getByRole('button', { name: 'Replay' }).count();
        },
        { timeout: 15_000 },
      )
      .toBe(1);
    await sshRow.getByRole('button', { name: 'Replay' }).click();
    const replay = activePanel(alice);
    const slider = replay.getByTestId('replay-slider');
    await slider.waitFor();
    await slider.focus();
    await alice.keyboard.press('End');
    const screen = replay.locator('.xterm-rows');
    await expect.poll(() => screen.innerText(), { timeout: 15_000 }).toContain('journey-42');
    const text = await screen.innerText();
    expect(text).toContain('still-here-42');
    expect(text).not.toContain('ran-42');
    await screenshot(alice, 'journey-06-replay-ssh');
    mark('6');
  });

  it('leaves no console errors on either console', () => {
    for (const [user, problems] of Object.entries(seen)) {
      expect(consoleProblems(problems, gw.url), user).toEqual([]);
    }
  });
});
