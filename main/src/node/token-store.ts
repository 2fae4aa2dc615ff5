/**
 * Where the desktop app keeps its sign-in. The refresh token is the long-lived
 * secret: it is written to disk only encrypted by a `SecretBox` (Electron's
 * safeStorage, i.e. the OS keychain, in the app; a fake in tests). The access token
 * lives in memory only and is refreshed (refresh_token grant) shortly before it
 * expires. If the keychain is not available, nothing is written: the sign-in lasts
 * until the app quits, and `persistence()` says so for the UI.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { type OidcTokens, SignInError } from './sign-in';

/** The subset of Electron's `safeStorage` the store needs. */
export interface SecretBox {
  isEncryptionAvailable(): boolean;
  encryptString(plainText: string): Buffer;
  decryptString(encrypted: Buffer): string;
}

export interface Persistence {
  mode: 'keychain' | 'memory';
  /** Why the sign-in is not kept across restarts (for the UI). */
  note?: string;
}

export interface SessionStatus {
  signedIn: boolean;
  username?: string;
  subject?: string;
  /** Epoch ms of the current access token's expiry. */
  expiresAt?: number;
}

export interface TokenStoreOptions {
  /** The session file, e.g. `<userData>/session.json`. */
  file: string;
  box: SecretBox;
  /** The session belongs to this provider and client; a file for another is ignored. */
  issuer: string;
  clientId: string;
  refresh: (refreshToken: string) => Promise<OidcTokens>;
  /** Best-effort revocation at sign-out. */
  revoke?: (refreshToken: string) => Promise<void>;
  /** Refresh this long before the access token expires. Default 60 s. */
  refreshBeforeMs?: number;
  /** Schedule refreshes with timers (default true). */
  autoRefresh?: boolean;
  now?: () => number;
  log?: (level: 'info' | 'warn', message: string) => void;
}

const SessionFile = z.object({
  version: z.literal(1),
  issuer: z.string(),
  clientId: z.string(),
  username: z.string().optional(),
  subject: z.string().optional(),
  /** base64 of `SecretBox.encryptString(refreshToken)`. */
  refreshToken: z.object({ encrypted: z.string().min(1) }),
  savedAt: z.string(),
});
type SessionFile = z.infer<typeof SessionFile>;

const MEMORY_NOTE =
  'The OS keychain is not available, so your sign-in is kept in memory only: you will sign in again after restarting the app.';

export class TokenStore {
  private tokens: OidcTokens | undefined;
  private refreshing: Promise<OidcTokens | undefined> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryDelay = 0;
  private readonly listeners = new Set<(s: SessionStatus) => void>();
  private readonly now: () => number;
  private readonly skew: number;

  constructor(private readonly opts: TokenStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.skew = opts.refreshBeforeMs ?? 60_000;
  }

  persistence(): Persistence {
    return this.opts.box.isEncryptionAvailable()
      ? { mode: 'keychain' }
      : { mode: 'memory', note: MEMORY_NOTE };
  }

  status(): SessionStatus {
    const t = this.tokens;
    if (!t) return { signedIn: false };
    return {
      signedIn: true,
      ...(t.username ? { username: t.username } : {}),
      ...(t.subject ? { subject: t.subject } : {}),
      expiresAt: t.expiresAt,
    };
  }

  onChange(listener: (s: SessionStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Restores a saved sign-in at start-up: decrypts the refresh token and exchanges it
   * for a fresh access token. Returns whether the app is signed in.
   */
  async restore(): Promise<boolean> {
    const saved = await this.readFile();
    if (!saved) return false;
    if (saved.issuer !== this.opts.issuer || saved.clientId !== this.opts.clientId) {
      this.log('info', 'the saved sign-in belongs to another identity provider or client; ignoring it');
      await this.deleteFile();
      return false;
    }
    if (!this.opts.box.isEncryptionAvailable()) {
      this.log('warn', 'a saved sign-in exists but the OS keychain is not available to decrypt it');
      return false;
    }
    let refreshToken: string;
    try {
      refreshToken = this.opts.box.decryptString(Buffer.from(saved.refreshToken.encrypted, 'base64'));
    } catch {
      this.log(
        'warn',
        'the saved sign-in cannot be decrypted (keychain changed?); signing in again is needed',
      );
      await this.deleteFile();
      return false;
    }
    // Until the refresh succeeds the session has no usable access token.
    this.tokens = {
      accessToken: '',
      tokenType: 'Bearer',
      expiresAt: 0,
      refreshToken,
      ...(saved.username ? { username: saved.username } : {}),
      ...(saved.subject ? { subject: saved.subject } : {}),
    };
    const fresh = await this.refreshNow().catch((err: Error) => {
      this.log('warn', `could not restore the sign-in yet: ${err.message}`);
      return undefined;
    });
    return fresh !== undefined;
  }

  /** After an interactive sign-in. */
  async save(tokens: OidcTokens): Promise<void> {
    this.tokens = tokens;
    this.retryDelay = 0;
    await this.persist(tokens);
    this.schedule();
    this.emit();
  }

  /** A valid access token (refreshed first if it is about to expire), or undefined when signed out. */
  async accessToken(): Promise<string | undefined> {
    const t = this.tokens;
    if (!t) return undefined;
    if (t.accessToken && t.expiresAt - this.skew > this.now()) return t.accessToken;
    if (!t.refreshToken) {
      // Nothing to refresh with: the token is used until it really expires.
      return t.accessToken && t.expiresAt > this.now() ? t.accessToken : undefined;
    }
    const fresh = await this.refreshNow().catch(() => undefined);
    if (fresh?.accessToken) return fresh.accessToken;
    // The provider is unreachable: use the current token for as long as it is valid.
    // (If it refused the refresh token, the session is gone: nothing is returned.)
    if (this.tokens !== t) return undefined;
    return t.accessToken && t.expiresAt > this.now() ? t.accessToken : undefined;
  }

  /**
   * The refresh_token grant, once at a time. A rejected refresh token ends the
   * session; a failure to reach the provider keeps it and retries later.
   */
  refreshNow(): Promise<OidcTokens | undefined> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<OidcTokens | undefined> {
    const current = this.tokens;
    if (!current?.refreshToken) return undefined;
    try {
      const fresh = await this.opts.refresh(current.refreshToken);
      if (this.tokens !== current) return this.tokens; // signed out or replaced meanwhile
      const next: OidcTokens = {
        ...fresh,
        refreshToken: fresh.refreshToken ?? current.refreshToken,
        ...((fresh.username ?? current.username) ? { username: fresh.username ?? current.username } : {}),
        ...((fresh.subject ?? current.subject) ? { subject: fresh.subject ?? current.subject } : {}),
      };
      this.tokens = next;
      this.retryDelay = 0;
      if (next.refreshToken !== current.refreshToken) await this.persist(next);
      this.schedule();
      this.emit();
      return next;
    } catch (err) {
      if (err instanceof SignInError && err.code === 'refresh_rejected') {
        this.log('info', `signed out: ${err.message}`);
        await this.clear();
      } else {
        this.retryDelay = Math.min(Math.max(this.retryDelay * 2, 5_000), 5 * 60_000);
        this.schedule(this.retryDelay);
      }
      throw err;
    }
  }

  /** Forgets the session everywhere: memory, disk, and (best effort) at the provider. */
  async signOut(): Promise<void> {
    const refreshToken = this.tokens?.refreshToken;
    await this.clear();
    if (refreshToken && this.opts.revoke) {
      await this.opts.revoke(refreshToken).catch((err: Error) => {
        this.log('warn', `could not revoke the refresh token at the provider: ${err.message}`);
      });
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async clear(): Promise<void> {
    this.dispose();
    this.tokens = undefined;
    await this.deleteFile();
    this.emit();
  }

  private schedule(delay?: number): void {
    this.dispose();
    if (this.opts.autoRefresh === false || !this.tokens?.refreshToken) return;
    const due = delay ?? Math.max(this.tokens.expiresAt - this.skew - this.now(), 1_000);
    this.timer = setTimeout(() => {
      this.refreshNow().catch((err: Error) => this.log('warn', `background refresh failed: ${err.message}`));
    }, due);
    this.timer.unref?.();
  }

  private emit(): void {
    const s = this.status();
    for (const l of this.listeners) l(s);
  }

  private log(level: 'info' | 'warn', message: string): void {
    this.opts.log?.(level, message);
  }

  private async persist(tokens: OidcTokens): Promise<void> {
    if (!tokens.refreshToken) {
      await this.deleteFile();
      return;
    }
    if (!this.opts.box.isEncryptionAvailable()) {
      // Never write a token in clear; drop anything an earlier run left.
      await this.deleteFile();
      return;
    }
    const body: SessionFile = {
      version: 1,
      issuer: this.opts.issuer,
      clientId: this.opts.clientId,
      ...(tokens.username ? { username: tokens.username } : {}),
      ...(tokens.subject ? { subject: tokens.subject } : {}),
      refreshToken: { encrypted: this.opts.box.encryptString(tokens.refreshToken).toString('base64') },
      savedAt: new Date(this.now()).toISOString(),
    };
    await mkdir(path.dirname(this.opts.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.opts.file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.opts.file);
  }

  private async readFile(): Promise<SessionFile | undefined> {
    let text: string;
    try {
      text = await readFile(this.opts.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return SessionFile.parse(JSON.parse(text));
    } catch {
      this.log('warn', `ignoring an unreadable session file ${this.opts.file}`);
      await this.deleteFile();
      return undefined;
    }
  }

  private async deleteFile(): Promise<void> {
    await rm(this.opts.file, { force: true });
  }
}
