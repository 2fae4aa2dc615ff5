// A gateway serving the built web console, with the development identity provider.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from '@sallyport/gateway-server/rig';
import type { Page } from 'playwright-core';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const RENDERER_DIR = path.join(ROOT, 'renderer');
export const CONSOLE_DIR = path.join(RENDERER_DIR, 'dist');

function newestMtime(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, entry)));
  return newest;
}

/** Builds the renderer when renderer/dist is missing or older than its sources (or the protocol's). */
export function ensureRendererBuilt(): void {
  const built = path.join(CONSOLE_DIR, 'index.html');
  const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0;
  const sources = [
    path.join(RENDERER_DIR, 'src'),
    path.join(RENDERER_DIR, 'index.html'),
    path.join(RENDERER_DIR, 'vite.config.ts'),
    path.join(ROOT, 'protocol', 'src'),
  ];
  if (builtAt > 0 && sources.every((s) => newestMtime(s) <= builtAt)) return;
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: RENDERER_DIR, stdio: 'pipe' });
  if (!existsSync(built)) throw new Error(`renderer build produced no ${built}`);
}

export async function startConsoleGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  ensureRendererBuilt();
  return startTestGateway({ ...opts, consoleDir: CONSOLE_DIR });
}

export type DemoUser = 'alice' | 'bob' | 'carol' | 'dave';

/**
 * Signs in from the console's sign-in screen through the provider's real login
 * page and waits until the console shows the user.
 */
export async function signInThroughProvider(page: Page, gatewayUrl: string, user: DemoUser): Promise<void> {
  await page.goto(`${gatewayUrl}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.locator('#username').waitFor();
  await page.locator('#username').fill(user);
  await page.locator('#password').fill(`${user}-demo`);
  await page.locator('#sign-in').click();
  await page.waitForURL(`${gatewayUrl}/`);
  await page.getByTestId('user').waitFor();
}

/** The console session cookie of a page's context (HttpOnly: only the test harness can read it). */
export async function sessionCookie(page: Page): Promise<string> {
  const cookie = (await page.context().cookies()).find((c) => c.name === 'sallyport_session');
  if (!cookie) throw new Error('no sallyport_session cookie');
  return `${cookie.name}=${cookie.value}`;
}
