// Chromium for the end-to-end tests: Debian's build driven by playwright-core.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const ARTIFACTS_DIR = path.resolve(import.meta.dirname, '..', 'artifacts');

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.SALLYPORT_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A fresh context per user: own cookies, nothing shared with other users in the same test. */
export function newUserContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
}

/** Writes `e2e/artifacts/<name>.png` (gitignored) and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = path.join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export interface PageProblem {
  kind: 'console' | 'pageerror';
  text: string;
  /** The URL the message is attributed to (script or failed resource), when known. */
  url?: string;
}

/** Collects console errors and uncaught exceptions of a page, for a "no errors" assertion. */
export function watchPage(page: Page): PageProblem[] {
  const problems: PageProblem[] = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location().url;
    problems.push({ kind: 'console', text: msg.text(), ...(url ? { url } : {}) });
  });
  page.on('pageerror', (err) => problems.push({ kind: 'pageerror', text: err.stack ?? err.message }));
  return problems;
}
