// Session tabs in the web console against real targets: an OpenSSH sshd and a PostgreSQL with the
// demo customers, both behind the gateway. Alice opens a terminal and a SQL tab, sees masking,
// guardrails, errors, the row cap and CSV export, closes the shell, replays it from Recordings,
// and after a reload finds her tabs restored (a tab whose grant was revoked says so).
import { readFileSync } from 'node:fs';
import {
  demoCustomers,
  type RunningPostgres,
  type RunningSshd,
  startPostgres,
  startSshd,
} from '@sallyport/gateway-server/devstack';
import type { TestGateway } from '@sallyport/gateway-server/rig';
import type { GatewayClient, TargetInput } from '@sallyport/protocol';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newUserContext, type PageProblem, screenshot, watchPage } from '../support/browser';
import { signInThroughProvider, startConsoleGateway } from '../support/console';
import { editorText, runSql, setEditorText, terminalText, typeInTerminal } from '../support/sessions';

const REASON = 'investigating the nightly import for ticket OPS-912';
const customers = demoCustomers();

let sshd: RunningSshd;
let pgServer: RunningPostgres;
let gw: TestGateway;
let browser: Browser;
let alice: GatewayClient;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  [sshd, pgServer, browser] = await Promise.all([
    startSshd(),
    startPostgres({ seedDemo: true }),
    launchBrowser(),
  ]);
  const targets: TargetInput[] = [
    {
      id: 'build-box',
      kind: 'ssh',
      name: 'Build box',
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      hostKey: sshd.hostPublicKey,
      credential: { privateKey: sshd.clientPrivateKey },
      labels: { env: 'dev', team: 'platform' },
    },
    {
      id: 'shop-db',
      kind: 'postgres',
      name: 'Shop database',
      host: pgServer.host,
      port: pgServer.port,
      user: pgServer.user,
      database: pgServer.database,
      tls: 'disable',
      credential: { password: pgServer.password },
      labels: { env: 'dev', team: 'payments' },
    },
  ];
  gw = await startConsoleGateway({
    config: {
      targets,
      access: {
        rules: [
          {
            name: 'developers-dev',
            requesters: { groups: ['developers'] },
            targets: { labels: { env: 'dev' } },
            levels: ['shell', 'read', 'write'],
            maxDuration: '4h',
            approval: 'auto',
          },
        ],
      },
    },
  });
  alice = gw.client(await gw.token('alice'));
  await grantAll();
});

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await Promise.all([sshd?.stop(), pgServer?.stop()]);
});

/** Alice's grants on both targets (automatic under the rule above), through the API. */
async function grantAll(): Promise<void> {
  for (const [targetId, level] of [
    ['build-box', 'shell'],
    ['shop-db', 'write'],
  ] as const) {
    const out = await alice.requestAccess({ targetId, level, duration: '1h', reason: REASON });
    expect(out.outcome).toBe('granted');
  }
}

async function newPage(): Promise<{ page: Page; problems: PageProblem[] }> {
  const context = await newUserContext(browser);
  contexts.push(context);
  const page = await context.newPage();
  return { page, problems: watchPage(page) };
}

/** Problems on the console's pages, except the signed-out probe (`GET /api/me` → 401 before sign-in). */
const consoleProblems = (problems: PageProblem[]) =>
  problems.filter(
    (p) =>
      !(p.kind === 'console' && p.url === `${gw.url}/api/me` && p.text.includes('status of 401')) &&
      (p.url === undefined || p.url.startsWith(gw.url)),
  );

const activePanel = (page: Page): Locator => page.locator('.workspace-tab:not([hidden])');

async function openFromMenu(page: Page, targetId: string): Promise<void> {
  await page.getByRole('button', { name: 'New session' }).click();
  await page.locator(`.new-session [data-target-id="${targetId}"]`).click();
}

describe('session tabs', () => {
  it('terminal, SQL (masking, guardrails, errors, row cap, CSV) and replay from Recordings', async () => {
    const { page, problems } = await newPage();
    // The console asks for terminal output as binary frames (no JSON + base64 per chunk).
    const terminalFrames = { binary: 0, jsonOutput: 0 };
    page.on('websocket', (socket) => {
      if (!socket.url().includes('/api/terminal')) return;
      socket.on('framereceived', ({ payload }) => {
        if (typeof payload !== 'string') terminalFrames.binary++;
        else if (payload.includes('"type":"output"')) terminalFrames.jsonOutput++;
      });
    });
    const t0 = Date.now();
    await signInThroughProvider(page, gw.url, 'alice');
    await expect.poll(() => page.locator('tbody tr [data-access="active"]').count()).toBe(2);
    await screenshot(page, 'sessions-01-targets');

    // ---- New session menu: the targets alice holds an active grant on.
    await page.getByRole('button', { name: 'New session' }).click();
    const menu = page.getByRole('menu', { name: 'New session' });
    await expect.poll(() => menu.getByRole('menuitem').count()).toBe(2);
    expect(await menu.getByRole('menuitem').allInnerTexts()).toEqual([
      expect.stringMatching(/Terminal · Build box/),
      expect.stringMatching(/SQL · Shop database/),
    ]);
    await screenshot(page, 'sessions-02-new-session-menu');
    await page.keyboard.press('Escape');

    // ---- SSH: a real shell on sshd through the gateway.
    await openFromMenu(page, 'build-box');
    const ssh = activePanel(page);
    await ssh.locator('.session-ssh .conn-ready').waitFor();
    expect(await page.locator('.topbar h1').textContent()).toBe('Build box');
    await expect.poll(() => terminalText(ssh), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);
    await typeInTerminal(page, ssh, 'echo hello-$((6*7))\r');
    await expect.poll(() => terminalText(ssh), { timeout: 15_000 }).toContain('hello-42');
    // Multi-byte UTF-8 output, from binary frames, is decoded by xterm.
    await typeInTerminal(page, ssh, "printf 'caf\\303\\251 \\342\\202\\254 ok-%s\\n' $((2+3))\r");
    await expect.poll(() => terminalText(ssh), { timeout: 15_000 }).toContain('café € ok-5');
    expect(terminalFrames.binary).toBeGreaterThan(0);
    expect(terminalFrames.jsonOutput).toBe(0);
    // Find (Ctrl+F) highlights the match.
    await ssh.locator('.xterm').click();
    await page.keyboard.press('Control+f');
    await ssh.getByRole('textbox', { name: 'Search the terminal' }).fill('hello-42');
    await expect.poll(() => ssh.locator('.term-search-count').textContent()).toMatch(/of [1-9]/);
    await screenshot(page, 'sessions-03-ssh-terminal');
    await page.keyboard.press('Escape');
    const tab = page.locator('.wtab[data-uri="/targets/build-box/ssh"]');
    expect(await tab.getAttribute('data-status')).toBe('connected');

    // ---- SQL: masked cells are marked as masked.
    await openFromMenu(page, 'shop-db');
    const sql = activePanel(page);
    await sql.locator('.session-sql .conn-ready').waitFor();
    await sql.locator('.monaco-editor').waitFor();
    await runSql(page, sql, 'select name, email, card_number from customers order by id limit 20');
    const grid = sql.getByTestId('result-grid');
    await expect.poll(() => grid.getAttribute('data-rows')).toBe('20');
    expect(await grid.locator('thead th').allInnerTexts()).toEqual([
      '#',
      expect.stringMatching(/^name\s+text$/),
      expect.stringMatching(/^email\s+text$/),
      expect.stringMatching(/^card_number\s+text$/),
    ]);
    const masked = grid.locator('td[data-masked="true"]');
    expect(await masked.count()).toBe(40);
    expect(new Set(await masked.evaluateAll((tds) => tds.map((td) => td.getAttribute('title'))))).toEqual(
      new Set(['masked by the gateway']),
    );
    expect(await masked.locator('svg.cell-lock').count()).toBe(40);
    const shown = await grid.locator('tbody').innerText();
    expect(shown).toContain(customers[0]!.name);
    for (const c of customers.slice(0, 20)) {
      expect(shown).not.toContain(c.email);
      expect(shown).not.toContain(c.cardNumber);
    }
    expect(shown).toContain(customers[0]!.cardNumber.slice(-4));
    expect(await sql.getByTestId('masked-count').textContent()).toContain('40 masked');
    await screenshot(page, 'sessions-04-sql-masked');

    // CSV export: what is shown, masked values as shown.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      sql.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^shop-db-\d{8}T\d{6}\.csv$/);
    const csv = readFileSync(await download.path(), 'utf8').replace(/^\uFEFF/, '');
    const lines = csv.trimEnd().split('\r\n');
    expect(lines).toHaveLength(21);
    expect(lines[0]).toBe('name,email,card_number');
    const firstRow = await grid.locator('tbody tr').first().locator('td').allInnerTexts();
    expect(lines[1]).toBe(
      firstRow.map((v) => (/[",]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v)).join(','),
    );
    for (const c of customers) {
      expect(csv).not.toContain(c.email);
      expect(csv).not.toContain(c.cardNumber);
    }
    expect(csv).toMatch(/•{4,}/);

    // Guardrails: DELETE without WHERE never runs unreviewed: the gateway holds it for an approver
    // (rule delete-without-where), the rule and the statement are shown, and Cancel withdraws it.
    expect(await runSql(page, sql, 'delete from customers')).toBe('review');
    const guard = sql.locator('[data-testid="sql-review"][data-review-status="pending"]');
    await guard.waitFor();
    expect(await guard.textContent()).toContain('delete-without-where');
    expect(await guard.locator('.sql-msg-stmt').textContent()).toBe('delete from customers');
    await screenshot(page, 'sessions-05-sql-blocked');
    await sql.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => sql.locator('.sql-output').getAttribute('data-run-status')).toBe('cancelled');
    expect(await sql.getByTestId('run-status').textContent()).toBe('Review withdrawn · nothing ran');

    // PostgreSQL's errors: SQLSTATE, and the position marked in the editor.
    await runSql(page, sql, 'select 1/0');
    const error = sql.getByTestId('sql-error');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/SQLSTATE 22012[\s\S]*division by zero/);
    await expect.poll(() => sql.locator('.monaco-editor .squiggly-error').count()).toBeGreaterThan(0);
    await screenshot(page, 'sessions-06-sql-error');

    await runSql(page, sql, 'select id,\n  nme from customers');
    await expect
      .poll(() => sql.getByTestId('sql-error-position').textContent())
      .toBe('at position 14 (line 2, column 3)');
    expect(await error.textContent()).toContain('SQLSTATE 42703');
    await sql.locator('.monaco-editor .squiggly-error').first().hover({ force: true });
    await expect.poll(() => page.locator('.monaco-hover').first().textContent()).toContain('42703');
    await screenshot(page, 'sessions-07-sql-error-position');

    // PostgreSQL's notices, with their statement, as psql prints them.
    expect(
      await runSql(
        page,
        sql,
        'create temp table if not exists e2e_notes (n int);\ncreate temp table if not exists e2e_notes (n int)',
      ),
    ).toBe('complete');
    const notices = sql.getByTestId('sql-notices');
    await notices.waitFor();
    expect(await notices.textContent()).toMatch(
      /^NOTICE statement 2 · relation "e2e_notes" already exists, skipping$/,
    );
    await screenshot(page, 'sessions-07b-sql-notice');

    // 100 000 rows asked, 10 000 sent (the gateway's cap): the grid scrolls them, the cap is said.
    await runSql(page, sql, 'select g, md5(g::text) from generate_series(1,100000) g');
    await sql.getByTestId('sql-truncated').waitFor({ timeout: 30_000 });
    await expect.poll(() => grid.getAttribute('data-rows')).toBe('10000');
    expect(await sql.getByTestId('sql-truncated').textContent()).toContain('10,000 rows');
    const scrolled = await grid.evaluate(async (el) => {
      const started = performance.now();
      el.scrollTop = el.scrollHeight;
      await new Promise((r) => setTimeout(r, 100));
      return { rows: el.querySelectorAll('tbody tr').length, ms: performance.now() - started };
    });
    // Virtualized: a screenful of rows in the DOM, not ten thousand.
    expect(scrolled.rows).toBeLessThan(80);
    await expect.poll(() => grid.locator('tbody tr th').last().textContent()).toBe('10000');
    await screenshot(page, 'sessions-08-sql-100k-bottom');

    // History of this tab, newest first.
    await sql.getByRole('button', { name: /^History/ }).click();
    const history = page.getByRole('dialog', { name: 'Statement history' });
    expect(await history.locator('.history-sql').allInnerTexts()).toEqual([
      'select g, md5(g::text) from generate_series(1,100000) g',
      'create temp table if not exists e2e_notes (n int); create temp table if not exists e2e_notes (n int)',
      'select id,\n  nme from customers'.replace('\n', ' ').replace(/\s+/g, ' '),
      'select 1/0',
      'delete from customers',
      'select name, email, card_number from customers order by id limit 20',
    ]);
    await screenshot(page, 'sessions-09-sql-history');
    await history.locator('.history-sql', { hasText: 'select 1/0' }).click();
    // Monaco takes the text on its next render: wait for it rather than read once.
    await expect.poll(() => editorText(sql)).toBe('select 1/0');

    // ---- Close the shell: the reason is shown, with a reconnect button.
    await tab.getByRole('tab').click();
    await typeInTerminal(page, ssh, 'exit\r');
    const closed = ssh.getByTestId('session-closed');
    await closed.waitFor();
    expect(await closed.getAttribute('data-code')).toBe('exit');
    expect(await closed.textContent()).toContain('The remote shell exited');
    expect(await closed.getByRole('button', { name: 'Reconnect' }).isVisible()).toBe(true);
    await expect.poll(() => tab.getAttribute('data-status')).toBe('closed');
    await screenshot(page, 'sessions-10-ssh-closed');

    // ---- Recordings: the closed shell, replayed with xterm.
    await page.getByRole('tab', { name: 'Recordings' }).click();
    const sshRow = page.locator('tr[data-kind="ssh"]').first();
    await expect
      .poll(
        async () => {
          await page.getByRole('button', { name: 'Refresh' }).click();
          return sshRow.getByRole('button', { name: 'Replay' }).count();
        },
        { timeout: 15_000 },
      )
      .toBe(1);
    expect(await sshRow.textContent()).toContain('build-box');
    await screenshot(page, 'sessions-11-recordings');
    await sshRow.getByRole('button', { name: 'Replay' }).click();
    const replay = activePanel(page);
    const slider = replay.getByTestId('replay-slider');
    await slider.waitFor();
    await replay.getByRole('button', { name: '4×' }).click();
    await slider.focus();
    await page.keyboard.press('End');
    await expect
      .poll(() => replay.locator('.xterm-rows').innerText(), { timeout: 15_000 })
      .toContain('hello-42');
    expect(await replay.getByTestId('replay-time').textContent()).toMatch(/^(\d:\d\d\.\d) \/ \1$/);
    await screenshot(page, 'sessions-12-replay-ssh');
    // Seeking back to the start clears the screen; playing again brings the output back.
    await page.keyboard.press('Home');
    await expect.poll(() => replay.locator('.xterm-rows').innerText()).not.toContain('hello-42');
    await replay.getByRole('button', { name: 'Play' }).click();
    await expect
      .poll(() => replay.locator('.xterm-rows').innerText(), { timeout: 15_000 })
      .toContain('hello-42');

    // ---- The SQL session, replayed once its tab is closed: statements, verdicts, masked rows.
    await page
      .locator('.wtab[data-uri="/targets/shop-db/sql"]')
      .getByRole('button', { name: /^Close/ })
      .click();
    await page.getByRole('tab', { name: 'Recordings' }).click();
    const sqlRow = page.locator('tr[data-kind="sql"]').first();
    await expect
      .poll(
        async () => {
          await page.getByRole('button', { name: 'Refresh' }).click();
          return sqlRow.getByRole('button', { name: 'Replay' }).count();
        },
        { timeout: 15_000 },
      )
      .toBe(1);
    await sqlRow.getByRole('button', { name: 'Replay' }).click();
    const sqlReplay = activePanel(page);
    // (The withdrawn review also leaves a `cancelled` entry, the gateway's record of the cancel.)
    const statements = sqlReplay.locator('[data-testid="replay-statement"]:not(.stmt-cancelled)');
    await expect.poll(() => statements.count()).toBe(7);
    expect(await statements.evaluateAll((els) => els.map((e) => e.getAttribute('data-verdict')))).toEqual([
      'allow',
      'review',
      'allow',
      'allow',
      'allow',
      'allow',
      'allow',
    ]);
    // The second CREATE's notice is in the recording, with its statement.
    expect(await statements.nth(5).getByTestId('replay-notices').textContent()).toBe(
      'NOTICE relation "e2e_notes" already exists, skipping',
    );
    const first = statements.first();
    expect(await first.textContent()).toContain('20 rows');
    expect(await first.locator('td[data-masked="true"]').count()).toBe(40);
    const recorded = await first.locator('tbody').innerText();
    for (const c of customers.slice(0, 20)) expect(recorded).not.toContain(c.email);
    expect(await statements.nth(2).textContent()).toContain('22012');
    await screenshot(page, 'sessions-13-replay-sql');

    expect(consoleProblems(problems)).toEqual([]);
    console.log(`sessions walkthrough: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  it('restores tabs after a reload; a tab whose grant was revoked shows the gateway notice, then "grant ended"', async () => {
    const { page, problems } = await newPage();
    await signInThroughProvider(page, gw.url, 'alice');
    await openFromMenu(page, 'shop-db');
    const sql = activePanel(page);
    await sql.locator('.session-sql .conn-ready').waitFor();
    await sql.locator('.monaco-editor').waitFor();
    await runSql(page, sql, "select count(*) as customers from customers where country = 'DE'");
    await expect.poll(() => sql.getByTestId('result-grid').getAttribute('data-rows')).toBe('1');
    await setEditorText(page, sql, 'select id, name from customers -- a draft kept across restarts');
    await openFromMenu(page, 'build-box');
    const ssh = activePanel(page);
    await ssh.locator('.session-ssh .conn-ready').waitFor();
    // The draft is saved shortly after typing stops.
    await page.waitForTimeout(500);

    await page.reload();
    await page.getByTestId('user').waitFor();
    expect(
      await page
        .locator('.wtab[data-tab-id]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-uri'))),
    ).toEqual(['/targets/shop-db/sql', '/targets/build-box/ssh']);
    // The active tab (the terminal) reconnects: its grant is still active.
    const restoredSsh = activePanel(page);
    await restoredSsh.locator('.session-ssh .conn-ready').waitFor();
    await page.locator('.wtab[data-uri="/targets/shop-db/sql"]').getByRole('tab').click();
    const restoredSql = activePanel(page);
    await restoredSql.locator('.session-sql .conn-ready').waitFor();
    await expect
      .poll(() => editorText(restoredSql))
      .toBe('select id, name from customers -- a draft kept across restarts');
    expect(await restoredSql.getByRole('button', { name: /^History/ }).textContent()).toBe('History (1)');

    // Revoked under a live terminal: the gateway's notice appears as a banner, apart from the output.
    await page.locator('.wtab[data-uri="/targets/build-box/ssh"]').getByRole('tab').click();
    const grants = await alice.grants({ scope: 'mine', status: 'active' });
    for (const g of grants.filter((g) => g.targetId === 'build-box')) {
      await alice.revoke(g.id, 'rotating the build box credentials');
    }
    const notice = restoredSsh.getByTestId('gateway-notice');
    await notice.first().waitFor();
    expect(await notice.first().getAttribute('data-code')).toBe('revoked');
    expect(await notice.first().textContent()).toMatch(/Access revoked[\s\S]*revoked/);
    expect(await restoredSsh.locator('.xterm-rows').innerText()).not.toContain('Gateway');
    await restoredSsh.getByTestId('session-closed').waitFor();
    await screenshot(page, 'sessions-14-ssh-revoked-notice');

    await page.reload();
    await page.getByTestId('user').waitFor();
    const ended = activePanel(page).getByTestId('grant-ended');
    await ended.waitFor();
    expect(await ended.textContent()).toMatch(
      /Grant ended[\s\S]*revoked by alice: rotating the build box credentials/,
    );
    await expect
      .poll(() => page.locator('.wtab[data-uri="/targets/build-box/ssh"]').getAttribute('data-status'))
      .toBe('grant-ended');
    await screenshot(page, 'sessions-15-restored-grant-ended');

    expect(consoleProblems(problems)).toEqual([]);
    await grantAll();
  });
});
