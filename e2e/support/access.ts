// Helpers for the access-flow tests: reading the console's state the way a user sees it.
// (Browser code is passed as strings: the e2e project compiles without the DOM library.)
import type { Page } from 'playwright-core';
import type { PageProblem } from './browser';

/** The access state a target row shows (`none`, `pending`, `active`, `expiring`). */
export const accessState = (page: Page, targetId: string): Promise<string | null> =>
  page.locator(`tr[data-target-id="${targetId}"] [data-access]`).getAttribute('data-access');

/** Marks the page's JS realm; `sameDocument` is true only while no reload or navigation replaced it. */
export async function markDocument(page: Page): Promise<void> {
  await page.evaluate('window.__e2eMarker = "kept"');
}
export async function sameDocument(page: Page): Promise<boolean> {
  return (await page.evaluate('window.__e2eMarker')) === 'kept';
}

/** Id of the focused element. */
export const focusedId = (page: Page): Promise<string> =>
  page.evaluate<string>('document.activeElement?.id ?? ""');

/** Text of the inbox badge in the navigation, or null while there is none. */
export async function inboxBadge(page: Page): Promise<string | null> {
  // One read that does not wait: counting first and then reading would wait (30 s) for a badge
  // that disappeared in between.
  const [text] = await page.getByTestId('inbox-count').allTextContents();
  return text ?? null;
}

/** Waits until the console's event socket says it is live. */
export async function waitLive(page: Page): Promise<void> {
  await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
}

/**
 * Problems on the console's own pages. The one expected message is the signed-out probe:
 * `GET /api/me` answers 401 before sign-in, which Chromium logs as a failed resource.
 */
export function consoleProblems(problems: PageProblem[], gatewayUrl: string): PageProblem[] {
  return problems.filter(
    (p) =>
      !(p.kind === 'console' && p.url === `${gatewayUrl}/api/me` && p.text.includes('status of 401')) &&
      (p.url === undefined || p.url.startsWith(gatewayUrl)),
  );
}

/** Double-clicks a target row on its name cell (the label chips have their own click). */
export async function doubleClickTarget(page: Page, targetId: string): Promise<void> {
  await page.locator(`tr[data-target-id="${targetId}"] td`).first().dblclick();
}

/**
 * Fills the open request dialog (level, the duration the dialog offers, reason), submits it and
 * waits until the dialog says it waits for approval. Returns the durations the dialog offered.
 */
export async function fillAndSubmitRequest(
  page: Page,
  o: { level: string; reason: string; beforeSubmit?: () => Promise<unknown> },
): Promise<string[]> {
  const dialog = page.getByTestId('request-dialog');
  await dialog.waitFor();
  await page.getByTestId('policy-summary').waitFor();
  await page.locator('#request-level').selectOption(o.level);
  const durations = await page.locator('#request-duration option').allTextContents();
  await page.locator('#request-reason').fill(o.reason);
  await o.beforeSubmit?.();
  await dialog.getByRole('button', { name: 'Request access' }).click();
  await page.getByTestId('waiting').waitFor();
  return durations;
}

/** Dismisses the console's toasts (they expire by themselves after a few seconds), for a clear screenshot. */
export async function dismissToasts(page: Page): Promise<void> {
  const toasts = page.getByRole('region', { name: 'Notifications' }).getByRole('button', { name: 'Dismiss' });
  // A toast may expire between counting and clicking: a missed click is fine.
  while ((await toasts.count()) > 0)
    await toasts
      .first()
      .click({ timeout: 1_000 })
      .catch(() => {});
}
