// Built-in development identity provider (oidc-provider v9) with demo users.
// For the embedded default and for tests only: in-memory storage, fresh keys per start,
// and it refuses to bind to anything but loopback unless explicitly allowed.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
// @ts-expect-error oidc-provider ships no type declarations; the parts used are typed below.
import OidcProviderModule, { errors as oidcErrors } from 'oidc-provider';
import { isLoopbackHost } from './verifier';

export interface DevUser {
  sub: string;
  username: string;
  password: string;
  name: string;
  email: string;
  groups: string[];
}

export const DEMO_USERS: DevUser[] = [
  {
    sub: 'user-alice',
    username: 'alice',
    password: 'alice-demo',
    name: 'Alice Developer',
    email: 'alice@sallyport.test',
    groups: ['developers'],
  },
  {
    sub: 'user-bob',
    username: 'bob',
    password: 'bob-demo',
    name: 'Bob Approver',
    email: 'bob@sallyport.test',
    groups: ['approvers', 'developers'],
  },
  {
    sub: 'user-carol',
    username: 'carol',
    password: 'carol-demo',
    name: 'Carol Admin',
    email: 'carol@sallyport.test',
    groups: ['admins'],
  },
  {
    sub: 'user-dave',
    username: 'dave',
    password: 'dave-demo',
    name: 'Dave Approver',
    email: 'dave@sallyport.test',
    groups: ['approvers'],
  },
];

export type ClientSecretAuthMethod = 'client_secret_basic' | 'client_secret_post';

export type DevClient =
  /** Desktop app / CLI: authorization code + PKCE; loopback redirects match on any port (RFC 8252). */
  | { kind: 'public'; clientId: string; redirectUris: string[] }
  /** Web console: authorization code with a client secret (PKCE optional). */
  | {
      kind: 'confidential';
      clientId: string;
      clientSecret: string;
      redirectUris: string[];
      tokenEndpointAuthMethod?: ClientSecretAuthMethod; // default client_secret_basic
    }
  /** CI: client_credentials grant; the access token carries `groups`. */
  | {
      kind: 'service';
      clientId: string;
      clientSecret: string;
      groups: string[];
      tokenEndpointAuthMethod?: ClientSecretAuthMethod; // default client_secret_basic
    };

/** Clients registered when `clients` is not given. */
export const DEFAULT_DEV_CLIENTS: DevClient[] = [
  { kind: 'public', clientId: 'sallyport-desktop', redirectUris: ['http://127.0.0.1/callback'] },
  { kind: 'service', clientId: 'sallyport-ci', clientSecret: 'sallyport-ci-demo', groups: ['developers'] },
];

export interface DevProviderOptions {
  /** Bind address, e.g. '127.0.0.1'. */
  host: string;
  /** 0 = random. */
  port: number;
  /** `aud` of the access tokens, e.g. 'sallyport'. */
  audience: string;
  /** Default false: refuse to bind to a non-loopback address. */
  allowNonLoopback?: boolean;
  /** Default DEMO_USERS. */
  users?: DevUser[];
  /** Default DEFAULT_DEV_CLIENTS. */
  clients?: DevClient[];
  /** Default 3600. */
  accessTokenTtlSeconds?: number;
  /** Private signing JWK (RS256 or ES256; `alg` required). Default: a fresh RS256 key per start. */
  signingKey?: JWK;
  /** Public issuer URL; default `http://<host>:<port>`. */
  issuer?: string;
}

export interface RunningDevProvider {
  issuer: string;
  port: number;
  /** Audience (`aud`) of issued access tokens. */
  audience: string;
  /** The RFC 8707 resource indicator bound to `audience` (absolute URI). Clients need not send it. */
  resourceIndicator: string;
  /** The worker thread it runs on (startDevProviderThread); absent when it shares the caller's. */
  threadId?: number;
  stop(): Promise<void>;
}

// ---- minimal typing of the oidc-provider surface used here ----

interface OidcInteraction {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}

interface OidcGrant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}

interface OidcProvider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<OidcInteraction>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: {
    new (init: { accountId: string; clientId: string }): OidcGrant;
    find(id: string): Promise<OidcGrant | undefined>;
  };
  on(event: string, listener: (...args: unknown[]) => void): void;
}

interface OidcClientLike {
  clientId: string;
  grantTypeAllowed(grant: string): boolean;
}

interface OidcTokenLike {
  kind?: string;
  accountId?: string;
  clientId?: string;
}

type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
const Provider = OidcProviderModule as ProviderConstructor;
const InvalidTarget = (oidcErrors as { InvalidTarget: new (description?: string) => Error }).InvalidTarget;

// ---- helpers ----

function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

async function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(buf);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // No form-action: the post-login redirect chain ends at the client's (other-origin) redirect URI.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;justify-content:center;padding-top:10vh}
main{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);width:22rem}
h1{font-size:1.3rem;margin-top:0}label{display:block;margin-top:1rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem;font-size:1rem}
button{margin-top:1.5rem;width:100%;padding:.6rem;font-size:1rem;cursor:pointer}
.error{color:#b00020}.hint{color:#555;font-size:.85rem;margin-top:1.5rem}
</style></head><body><main>${body}</main></body></html>`;
}

function loginPage(opts: {
  uid: string;
  clientId: string;
  error?: string;
  username?: string;
  hint?: string;
}) {
  const error = opts.error ? `<p class="error" role="alert">${escapeHtml(opts.error)}</p>` : '';
  const hint = opts.hint ? `<p class="hint">${escapeHtml(opts.hint)}</p>` : '';
  return page(
    'Sign in - Sallyport development identity provider',
    `<h1>Sign in to Sallyport</h1>
<p>Development identity provider. Signing in to <strong>${escapeHtml(opts.clientId)}</strong>.</p>
${error}
<form method="post" action="/interaction/${encodeURIComponent(opts.uid)}/login" autocomplete="off">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" required autofocus value="${escapeHtml(opts.username ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">Sign in</button>
</form>
${hint}`,
  );
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, PAGE_HEADERS);
  res.end(html);
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : 'Error';
}

// ---- in-memory storage (per provider instance; a dev provider forgets everything on restart) ----

interface StoredPayload {
  uid?: string;
  userCode?: string;
  grantId?: string;
  consumed?: number;
  [key: string]: unknown;
}

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

function createMemoryStore() {
  const entries = new Map<string, { payload: StoredPayload; expiresAt: number }>();
  const index = new Map<string, string>(); // sessionUid:/userCode: -> id
  const grants = new Map<string, Set<string>>(); // grantId -> entry keys
  let writes = 0;

  const get = (key: string): StoredPayload | undefined => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  const sweep = () => {
    const now = Date.now();
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key);
  };

  return (model: string) => {
    const keyFor = (id: string) => `${model}:${id}`;
    return {
      async upsert(id: string, payload: StoredPayload, expiresIn?: number) {
        if (++writes % 500 === 0) sweep();
        const key = keyFor(id);
        const expiresAt =
          typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY;
        entries.set(key, { payload, expiresAt });
        if (model === 'Session' && payload.uid) index.set(`sessionUid:${payload.uid}`, id);
        if (payload.userCode) index.set(`userCode:${payload.userCode}`, id);
        if (payload.grantId && GRANTABLE.has(model)) {
          const members = grants.get(payload.grantId) ?? new Set<string>();
          members.add(key);
          grants.set(payload.grantId, members);
        }
      },
      async find(id: string) {
        return get(keyFor(id));
      },
      async findByUid(uid: string) {
        const id = index.get(`sessionUid:${uid}`);
        return id ? get(keyFor(id)) : undefined;
      },
      async findByUserCode(userCode: string) {
        const id = index.get(`userCode:${userCode}`);
        return id ? get(keyFor(id)) : undefined;
      },
      async consume(id: string) {
        const payload = get(keyFor(id));
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id: string) {
        const key = keyFor(id);
        const payload = entries.get(key)?.payload;
        entries.delete(key);
        if (payload?.uid) index.delete(`sessionUid:${payload.uid}`);
        if (payload?.userCode) index.delete(`userCode:${payload.userCode}`);
        if (payload?.grantId) grants.get(payload.grantId)?.delete(key);
      },
      async revokeByGrantId(grantId: string) {
        for (const key of grants.get(grantId) ?? []) entries.delete(key);
        grants.delete(grantId);
      },
    };
  };
}

// ---- the provider ----

export async function startDevProvider(opts: DevProviderOptions): Promise<RunningDevProvider> {
  if (!opts.allowNonLoopback && !isLoopbackHost(opts.host)) {
    throw new Error(
      `refusing to start the development identity provider on non-loopback address '${opts.host}': ` +
        'it has demo users with known passwords; bind to 127.0.0.1, ::1 or localhost, or set allowNonLoopback explicitly',
    );
  }
  const users = opts.users ?? DEMO_USERS;
  const clients = opts.clients ?? DEFAULT_DEV_CLIENTS;
  const ttl = opts.accessTokenTtlSeconds ?? 3600;
  if (!Number.isInteger(ttl) || ttl <= 0) throw new Error('accessTokenTtlSeconds must be a positive integer');
  if (!opts.audience) throw new Error('audience is required');

  const usersBySub = new Map(users.map((u) => [u.sub, u]));
  const usersByName = new Map(users.map((u) => [u.username, u]));
  const serviceGroups = new Map<string, string[]>();
  for (const c of clients) if (c.kind === 'service') serviceGroups.set(c.clientId, c.groups);
  for (const u of users) {
    if (clients.some((c) => c.clientId === u.sub)) {
      throw new Error(`user sub '${u.sub}' collides with a client id`);
    }
  }

  // RFC 8707 resource indicators must be absolute URIs; a bare audience gets a URN wrapper.
  const resourceIndicator = URL.canParse(opts.audience) ? opts.audience : `urn:${opts.audience}`;

  let signingJwk: JWK;
  if (opts.signingKey) {
    if (!opts.signingKey.d) throw new Error('signingKey must be a private JWK');
    signingJwk = { ...opts.signingKey };
  } else {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    signingJwk = { ...(await exportJWK(privateKey)), alg: 'RS256' };
  }
  const alg = signingJwk.alg ?? 'RS256';
  if (alg !== 'RS256' && alg !== 'ES256')
    throw new Error(`unsupported signing alg ${alg} (use RS256 or ES256)`);
  signingJwk.alg = alg;
  signingJwk.use = 'sig';
  signingJwk.kid ??= randomBytes(8).toString('hex');

  // Listen first so that port 0 resolves to the real port before the issuer is fixed.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503).end();
  };
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = opts.issuer ?? `http://${hostForUrl(opts.host)}:${port}`;

  const resourceServer = {
    scope: 'gateway',
    audience: opts.audience,
    accessTokenTTL: ttl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg } },
  };

  const provider = new Provider(issuer, {
    adapter: createMemoryStore(),
    clients: clients.map(toClientMetadata),
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: {
      AccessToken: ttl,
      ClientCredentials: ttl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
    },
    clientDefaults: { id_token_signed_response_alg: alg },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Clients that do not send `resource` still get a JWT for the gateway.
        defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string[]) => {
          if (oneOf?.length) return oneOf.includes(resourceIndicator) ? resourceIndicator : oneOf[0];
          return resourceIndicator;
        },
        // Authorization code / refresh token exchanges reuse the resource granted at /auth.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
          if (indicator !== resourceIndicator) throw new InvalidTarget(`unknown resource ${indicator}`);
          return resourceServer;
        },
      },
    },
    formats: {
      customizers: {
        jwt: async (_ctx: unknown, _token: unknown, jwt: { payload: Record<string, unknown> }) => {
          jwt.payload.nbf ??= jwt.payload.iat;
        },
      },
    },
    extraTokenClaims: async (_ctx: unknown, token: OidcTokenLike) => {
      if (token.accountId) {
        const user = usersBySub.get(token.accountId);
        if (!user) return undefined;
        return {
          groups: [...user.groups],
          preferred_username: user.username,
          name: user.name,
          email: user.email,
        };
      }
      const groups = token.clientId ? serviceGroups.get(token.clientId) : undefined;
      return groups ? { groups: [...groups] } : undefined;
    },
    findAccount: async (_ctx: unknown, id: string) => {
      const user = usersBySub.get(id);
      if (!user) return undefined;
      return {
        accountId: user.sub,
        claims: async () => ({
          sub: user.sub,
          name: user.name,
          preferred_username: user.username,
          email: user.email,
          email_verified: true,
          groups: [...user.groups],
        }),
      };
    },
    // Refresh tokens for every client allowed the refresh_token grant (no offline_access dance).
    issueRefreshToken: async (_ctx: unknown, client: OidcClientLike) =>
      client.grantTypeAllowed('refresh_token'),
    interactions: {
      url: async (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    renderError: async (
      ctx: { type: string; body: string },
      out: { error?: string; error_description?: string },
    ) => {
      ctx.type = 'html';
      ctx.body = page(
        'Error - Sallyport development identity provider',
        `<h1>Sign-in error</h1><p class="error" role="alert">${escapeHtml(out.error ?? 'error')}</p><p>${escapeHtml(out.error_description ?? '')}</p>`,
      );
    },
  });
  provider.on('server_error', (_ctx, err) => {
    console.error('dev identity provider server_error:', err);
  });

  const hint =
    users === DEMO_USERS
      ? `Demo users: ${DEMO_USERS.map((u) => u.username).join(', ')} (password: <username>-demo).`
      : undefined;

  const callback = provider.callback();

  async function showInteraction(req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    const clientId = String(details.params.client_id ?? '');
    if (details.prompt.name === 'login') {
      sendHtml(res, 200, loginPage({ uid, clientId, hint }));
      return;
    }
    if (details.prompt.name === 'consent') {
      // First-party dev clients: consent is granted automatically.
      const accountId = details.session?.accountId;
      if (!accountId) throw new Error('consent without a session');
      const grant = details.grantId
        ? ((await provider.Grant.find(details.grantId)) ?? new provider.Grant({ accountId, clientId }))
        : new provider.Grant({ accountId, clientId });
      const d = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (d.missingOIDCScope?.length) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims?.length) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId } },
        { mergeWithLastSubmission: true },
      );
      return;
    }
    sendHtml(res, 501, page('Unsupported', `<p>Unsupported prompt ${escapeHtml(details.prompt.name)}</p>`));
  }

  async function submitLogin(req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid || details.prompt.name !== 'login') throw new Error('interaction mismatch');
    const form = await readForm(req);
    const username = (form.get('username') ?? '').trim();
    const password = form.get('password') ?? '';
    const user = usersByName.get(username);
    // Compare against a dummy secret for unknown users so both paths cost the same.
    const ok = sameSecret(password, user?.password ?? '\u0000no-such-user') && user !== undefined;
    if (!ok) {
      sendHtml(
        res,
        401,
        loginPage({
          uid,
          clientId: String(details.params.client_id ?? ''),
          error: 'Invalid username or password.',
          username,
          hint,
        }),
      );
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub, remember: false } },
      { mergeWithLastSubmission: false },
    );
  }

  async function abortInteraction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
  }

  handler = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://dev-provider.invalid');
    const show = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
    const login = /^\/interaction\/([A-Za-z0-9_-]+)\/login$/.exec(url.pathname);
    const abort = /^\/interaction\/([A-Za-z0-9_-]+)\/abort$/.exec(url.pathname);
    let work: Promise<void> | undefined;
    if (show?.[1] && req.method === 'GET') work = showInteraction(req, res, show[1]);
    else if (login?.[1] && req.method === 'POST') work = submitLogin(req, res, login[1]);
    else if (abort?.[1] && req.method === 'GET') work = abortInteraction(req, res);
    if (!work) {
      callback(req, res);
      return;
    }
    work.catch((err: unknown) => {
      if (res.headersSent) {
        res.end();
        return;
      }
      const expired = errorName(err) === 'SessionNotFound';
      sendHtml(
        res,
        400,
        page(
          'Sign-in error',
          `<h1>Sign-in error</h1><p class="error" role="alert">${
            expired
              ? 'The sign-in session expired or was not found. Start the sign-in again from the application.'
              : 'The sign-in request could not be processed. Start the sign-in again from the application.'
          }</p>`,
        ),
      );
    });
  };

  return {
    issuer,
    port,
    audience: opts.audience,
    resourceIndicator,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function toClientMetadata(c: DevClient): Record<string, unknown> {
  switch (c.kind) {
    case 'public':
      return {
        client_id: c.clientId,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: c.redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      };
    case 'confidential':
      return {
        client_id: c.clientId,
        client_secret: c.clientSecret,
        application_type: 'web',
        token_endpoint_auth_method: c.tokenEndpointAuthMethod ?? 'client_secret_basic',
        redirect_uris: c.redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      };
    case 'service':
      return {
        client_id: c.clientId,
        client_secret: c.clientSecret,
        token_endpoint_auth_method: c.tokenEndpointAuthMethod ?? 'client_secret_basic',
        redirect_uris: [],
        grant_types: ['client_credentials'],
        response_types: [],
      };
  }
}
