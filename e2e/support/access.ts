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
  const badge = page.getByTestId('inbox-count');
  return (await badge.count()) === 0 ? null : badge.textContent();
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
