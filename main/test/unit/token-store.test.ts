import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type OidcTokens, SignInError } from '../../src/node/sign-in';
import { TokenStore } from '../../src/node/token-store';
import { fakeSecretBox } from '../support/fake-secret-box';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(
  over: { available?: boolean; now?: () => number; refresh?: (rt: string) => Promise<OidcTokens> } = {},
) {
  const dir = mkdtempSync(path.join(tmpdir(), 'sallyport-tokens-'));
  dirs.push(dir);
  const file = path.join(dir, 'session.json');
  const box = fakeSecretBox({ available: over.available ?? true });
  let n = 0;
  const refreshed: string[] = [];
  const revoked: string[] = [];
  const store = new TokenStore({
    file,
    box,
    issuer: 'https://idp.example.com',
    clientId: 'sallyport-desktop',
    autoRefresh: false,
    ...(over.now ? { now: over.now } : {}),
    refresh:
      over.refresh ??
      (async (rt) => {
        refreshed.push(rt);
        n++;
        return {
          accessToken: `access-${n}`,
          tokenType: 'Bearer',
          expiresAt: Date.now() + 3_600_000,
          refreshToken: `refresh-${n}`,
        };
      }),
    revoke: async (rt) => {
      revoked.push(rt);
    },
  });
  return { dir, file, box, store, refreshed, revoked };
}

const tokens = (over: Partial<OidcTokens> = {}): OidcTokens => ({
  accessToken: 'access-0',
  tokenType: 'Bearer',
  expiresAt: Date.now() + 3_600_000,
  refreshToken: 'refresh-0-very-secret',
  username: 'alice',
  subject: 'user-alice',
  ...over,
});

describe('token store', () => {
  it('writes the refresh token only encrypted, never the access token, with owner-only permissions', async () => {
    const { file, store, box } = setup();
    await store.save(tokens());
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('refresh-0-very-secret');
    expect(text).not.toContain('access-0');
    expect(box.calls.encrypt).toBe(1);
    const json = JSON.parse(text);
    expect(json).toMatchObject({
      version: 1,
      issuer: 'https://idp.example.com',
      clientId: 'sallyport-desktop',
      username: 'alice',
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(store.persistence()).toEqual({ mode: 'keychain' });
  });

  it('restores after a restart by refreshing, and keeps the rotated refresh token', async () => {
    const first = setup();
    await first.store.save(tokens());
    const again = new TokenStore({
      file: first.file,
      box: first.box,
      issuer: 'https://idp.example.com',
      clientId: 'sallyport-desktop',
      autoRefresh: false,
      refresh: async (rt) => {
        expect(rt).toBe('refresh-0-very-secret');
        return {
          accessToken: 'access-after-restart',
          tokenType: 'Bearer',
          expiresAt: Date.now() + 3_600_000,
          refreshToken: 'refresh-rotated',
        };
      },
    });
    expect(await again.restore()).toBe(true);
    expect(await again.accessToken()).toBe('access-after-restart');
    expect(again.status()).toMatchObject({ signedIn: true, username: 'alice' });
    expect(readFileSync(first.file, 'utf8')).not.toContain('refresh-rotated');
    expect(
      first.box.decryptString(
        Buffer.from(JSON.parse(readFileSync(first.file, 'utf8')).refreshToken.encrypted, 'base64'),
      ),
    ).toBe('refresh-rotated');
  });

  it('refreshes when the access token is about to expire, once for concurrent callers', async () => {
    let now = Date.now();
    const s = setup({ now: () => now });
    await s.store.save(tokens({ expiresAt: now + 120_000 }));
    expect(await s.store.accessToken()).toBe('access-0');
    now += 90_000; // 30 s left: inside the 60 s refresh margin
    const [a, b] = await Promise.all([s.store.accessToken(), s.store.accessToken()]);
    expect(a).toBe('access-1');
    expect(b).toBe('access-1');
    expect(s.refreshed).toEqual(['refresh-0-very-secret']);
  });

  it('keeps the sign-in in memory only when no keychain is available, and says so', async () => {
    const s = setup({ available: false });
    writeFileSync(s.file, '{"stale": true}');
    await s.store.save(tokens());
    expect(existsSync(s.file)).toBe(false); // nothing written, the stale file gone
    expect(await s.store.accessToken()).toBe('access-0');
    expect(s.store.persistence().mode).toBe('memory');
    expect(s.store.persistence().note).toMatch(/kept in memory only/);
  });

  it('a refresh token the provider rejects ends the session; a network failure keeps it', async () => {
    let now = Date.now();
    let mode: 'down' | 'rejected' = 'down';
    const s = setup({
      now: () => now,
      refresh: async () => {
        throw mode === 'down'
          ? new SignInError('refresh_failed', 'could not refresh the sign-in: fetch failed')
          : new SignInError('refresh_rejected', 'the identity provider ended the session: invalid_grant');
      },
    });
    await s.store.save(tokens({ expiresAt: now + 30_000 }));
    expect(await s.store.accessToken()).toBe('access-0'); // still valid for 30 s: used while the provider is down
    expect(s.store.status().signedIn).toBe(true);
    expect(existsSync(s.file)).toBe(true);
    mode = 'rejected';
    now += 1000;
    expect(await s.store.accessToken()).toBeUndefined();
    expect(s.store.status().signedIn).toBe(false);
    expect(existsSync(s.file)).toBe(false);
    s.store.dispose();
  });

  it('ignores a session saved for another provider, and an undecryptable one', async () => {
    const s = setup();
    await s.store.save(tokens());
    const other = new TokenStore({
      file: s.file,
      box: s.box,
      issuer: 'https://other-idp.example.com',
      clientId: 'sallyport-desktop',
      refresh: async () => {
        throw new Error('must not be called');
      },
    });
    expect(await other.restore()).toBe(false);
    expect(existsSync(s.file)).toBe(false);

    await s.store.save(tokens());
    const wrongKey = new TokenStore({
      file: s.file,
      box: fakeSecretBox(), // a different keychain
      issuer: 'https://idp.example.com',
      clientId: 'sallyport-desktop',
      refresh: async () => {
        throw new Error('must not be called');
      },
    });
    expect(await wrongKey.restore()).toBe(false);
  });

  it('sign-out clears memory and disk and revokes the refresh token', async () => {
    const s = setup();
    const changes: boolean[] = [];
    s.store.onChange((st) => changes.push(st.signedIn));
    await s.store.save(tokens());
    await s.store.signOut();
    expect(existsSync(s.file)).toBe(false);
    expect(await s.store.accessToken()).toBeUndefined();
    expect(s.revoked).toEqual(['refresh-0-very-secret']);
    expect(changes).toEqual([true, false]);
  });
});
