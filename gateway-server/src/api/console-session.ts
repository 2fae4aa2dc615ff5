// The web console's server side (BFF): the gateway is the console's confidential OAuth
// client, keeps the tokens, and hands the browser only an opaque HttpOnly session cookie.
// This file holds the cookie helpers, the small OIDC client (discovery, token endpoint)
// and the session table; the routes are in routes/console-auth.ts.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { isLoopbackHost } from '../identity';
import { createSealer, type Sealer, UnsealError } from '../secrets';
import type { ApiContext } from './context';

export const SESSION_COOKIE = 'sallyport_session';
export const LOGIN_COOKIE = 'sallyport_login';
/** Set by sign-out so that the next sign-in asks the provider for the password again. */
export const REAUTH_COOKIE = 'sallyport_reauth';

/** A console session ends after this long whatever the refresh token would allow. */
export const SESSION_MAX_AGE_SECONDS = 12 * 3600;
/** Refresh the access token when it has less than this left. */
const REFRESH_MARGIN_MS = 60_000;
/** Bound on memory: past this many sessions the oldest are dropped. */
const MAX_SESSIONS = 10_000;

// ---------- cookies ----------

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value.length > 0 && value.length <= 4096 ? value : undefined;
  }
  return undefined;
}

export interface CookieOptions {
  path: string;
  sameSite: 'Strict' | 'Lax';
  secure: boolean;
  /** Seconds; 0 deletes the cookie; undefined makes it a browser-session cookie. */
  maxAge?: number;
}

export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  const parts = [`${name}=${value}`, `Path=${o.path}`, 'HttpOnly', `SameSite=${o.sameSite}`];
  if (o.secure) parts.push('Secure');
  if (o.maxAge !== undefined) {
    parts.push(`Max-Age=${o.maxAge}`);
    if (o.maxAge === 0) parts.push('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  }
  return parts.join('; ');
}

/** The URL browsers reach this gateway at; falls back to the request's own host. */
export function publicUrlOf(ctx: ApiContext, req: FastifyRequest): string {
  const configured = ctx.publicUrl?.();
  if (configured) return configured.replace(/\/$/, '');
  return `${req.protocol}://${req.host}`;
}

/** Cookies get `Secure` whenever browsers reach the gateway over https. */
export function cookiesSecure(ctx: ApiContext, req: FastifyRequest): boolean {
  return (
    Boolean(ctx.config.server.tls) ||
    ctx.config.server.behindTlsProxy ||
    publicUrlOf(ctx, req).startsWith('https:')
  );
}

// ---------- sealed values (the short-lived sign-in cookie) ----------

// Without key material from the gateway (a bare API in a test), cookies are sealed with a per-process key.
let fallbackKey: Buffer | undefined;
const sealers = new WeakMap<ApiContext, Sealer>();

function sealerFor(ctx: ApiContext): Sealer {
  let s = sealers.get(ctx);
  if (!s) {
    fallbackKey ??= randomBytes(32);
    s = createSealer(ctx.consoleKey ?? fallbackKey);
    sealers.set(ctx, s);
  }
  return s;
}

/** AES-256-GCM with the purpose as associated data: a value sealed for one cookie does not open as another. */
export function sealJson(ctx: ApiContext, purpose: string, value: unknown): string {
  return sealerFor(ctx).seal(JSON.stringify(value), `console:${purpose}`);
}

export function openJson(ctx: ApiContext, purpose: string, sealed: string): unknown {
  try {
    return JSON.parse(sealerFor(ctx).open(sealed, `console:${purpose}`));
  } catch (err) {
    if (err instanceof UnsealError || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

export const pkceChallenge = (verifier: string): string =>
  createHash('sha256').update(verifier).digest('base64url');

// ---------- a small OIDC client (plain fetch; http only for loopback issuers) ----------

export class ConsoleAuthError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConsoleAuthError';
  }
}

/** https, or plain http on a loopback host (development and tests) — the rule the CLI uses too. */
export function assertSecureUrl(raw: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConsoleAuthError('provider_misconfigured', `${what} '${raw}' is not a URL`);
  }
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return u;
  throw new ConsoleAuthError(
    'provider_misconfigured',
    `${what} ${raw} is not https (plain http is accepted only on loopback)`,
  );
}

export interface ProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
}

const DISCOVERY_TTL_MS = 10 * 60_000;
const discoveries = new Map<string, { at: number; meta: ProviderMetadata }>();

export async function discover(issuer: string): Promise<ProviderMetadata> {
  const cached = discoveries.get(issuer);
  if (cached && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.meta;
  const base = assertSecureUrl(issuer, 'issuer');
  const url = `${base.href.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(5_000),
    });
  } catch (err) {
    throw new ConsoleAuthError(
      'provider_unavailable',
      `cannot reach the identity provider: ${(err as Error).message}`,
    );
  }
  if (!res.ok) throw new ConsoleAuthError('provider_unavailable', `discovery answered HTTP ${res.status}`);
  const meta = (await res.json().catch(() => ({}))) as Partial<ProviderMetadata>;
  if (meta.issuer !== issuer)
    throw new ConsoleAuthError(
      'provider_misconfigured',
      'discovery issuer does not match the configured one',
    );
  if (typeof meta.authorization_endpoint !== 'string' || typeof meta.token_endpoint !== 'string')
    throw new ConsoleAuthError('provider_misconfigured', 'discovery lacks authorization or token endpoint');
  assertSecureUrl(meta.authorization_endpoint, 'authorization endpoint');
  assertSecureUrl(meta.token_endpoint, 'token endpoint');
  const clean: ProviderMetadata = {
    issuer: meta.issuer,
    authorization_endpoint: meta.authorization_endpoint,
    token_endpoint: meta.token_endpoint,
  };
  discoveries.set(issuer, { at: Date.now(), meta: clean });
  return clean;
}

export interface TokenSet {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  expires_in?: number;
}

/** A token endpoint call authenticated with client_secret_basic (RFC 6749 §2.3.1 form-encoding). */
export async function tokenEndpoint(ctx: ApiContext, body: Record<string, string>): Promise<TokenSet> {
  const client = ctx.consoleClient;
  if (!client) throw new ConsoleAuthError('not_configured', 'the web console client is not configured');
  const meta = await discover(ctx.issuer());
  const basic = Buffer.from(
    `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`,
  ).toString('base64');
  let res: Response;
  try {
    res = await fetch(meta.token_endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        authorization: `Basic ${basic}`,
      },
      body: new URLSearchParams(body),
      redirect: 'error',
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new ConsoleAuthError(
      'provider_unavailable',
      `cannot reach the token endpoint: ${(err as Error).message}`,
    );
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok || typeof json.access_token !== 'string') {
    // Only the provider's error code is kept: descriptions can echo request content.
    const code = typeof json.error === 'string' ? json.error : `http_${res.status}`;
    throw new ConsoleAuthError('token_endpoint', `the identity provider refused the token request (${code})`);
  }
  return {
    access_token: json.access_token,
    ...(typeof json.refresh_token === 'string' ? { refresh_token: json.refresh_token } : {}),
    ...(typeof json.id_token === 'string' ? { id_token: json.id_token } : {}),
    ...(typeof json.expires_in === 'number' ? { expires_in: json.expires_in } : {}),
  };
}

// ---------- sessions ----------

export interface ConsoleSession {
  subject: string;
  username: string;
  kind: 'user' | 'service';
  accessToken: string;
  refreshToken?: string;
  /** When the access token expires (ms since epoch). */
  expiresAt: number;
  /** When the session ends regardless of refreshes (ms since epoch). */
  endsAt: number;
}

/**
 * Console sessions, in memory in the gateway process for now: a restart signs
 * everyone out of the web console. They move to the store with the access
 * lifecycle work (several gateway instances must share them). The table is
 * keyed by a hash of the cookie value, so a heap dump does not hold usable cookies.
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly refreshing = new Map<string, Promise<string | undefined>>();

  constructor(private readonly ctx: ApiContext) {}

  private static key(id: string): string {
    return createHash('sha256').update(id).digest('base64url');
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Stores a session and returns the cookie value that names it. */
  create(session: Omit<ConsoleSession, 'endsAt'>): string {
    this.sweep();
    while (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const id = randomToken(32);
    this.sessions.set(ConsoleSessions.key(id), {
      ...session,
      endsAt: Date.now() + SESSION_MAX_AGE_SECONDS * 1000,
    });
    return id;
  }

  destroy(id: string): ConsoleSession | undefined {
    const key = ConsoleSessions.key(id);
    const s = this.sessions.get(key);
    this.sessions.delete(key);
    return s;
  }

  /**
   * The access token of a live session, refreshed first when it is about to
   * expire and a refresh token was issued. Undefined when the session is unknown or over.
   */
  async accessToken(id: string): Promise<string | undefined> {
    const key = ConsoleSessions.key(id);
    const s = this.sessions.get(key);
    const now = Date.now();
    if (!s) return undefined;
    if (s.endsAt <= now) {
      this.sessions.delete(key);
      return undefined;
    }
    if (s.expiresAt - now > REFRESH_MARGIN_MS) return s.accessToken;
    if (!s.refreshToken) {
      if (s.expiresAt > now) return s.accessToken;
      this.sessions.delete(key);
      return undefined;
    }
    let pending = this.refreshing.get(key);
    if (!pending) {
      pending = this.refresh(key, s).finally(() => this.refreshing.delete(key));
      this.refreshing.set(key, pending);
    }
    return pending;
  }

  private async refresh(key: string, s: ConsoleSession): Promise<string | undefined> {
    try {
      const tokens = await tokenEndpoint(this.ctx, {
        grant_type: 'refresh_token',
        refresh_token: s.refreshToken ?? '',
      });
      const verifier = this.ctx.verifier();
      if (!verifier)
        throw new ConsoleAuthError('provider_unavailable', 'identity provider not discovered yet');
      const principal = await verifier.verify(`Bearer ${tokens.access_token}`);
      if (principal.subject !== s.subject)
        throw new ConsoleAuthError('subject_changed', 'refreshed token is for another subject');
      s.accessToken = tokens.access_token;
      s.expiresAt = principal.tokenExpiresAt.getTime();
      if (tokens.refresh_token) s.refreshToken = tokens.refresh_token;
      return s.accessToken;
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'console session: token refresh failed');
      if (s.expiresAt > Date.now()) return s.accessToken;
      this.sessions.delete(key);
      return undefined;
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, s] of this.sessions) {
      if (s.endsAt <= now || (!s.refreshToken && s.expiresAt <= now)) this.sessions.delete(key);
    }
  }
}

const tables = new WeakMap<ApiContext, ConsoleSessions>();

/** The session table of one API instance. */
export function consoleSessions(ctx: ApiContext): ConsoleSessions {
  let t = tables.get(ctx);
  if (!t) {
    t = new ConsoleSessions(ctx);
    tables.set(ctx, t);
  }
  return t;
}
