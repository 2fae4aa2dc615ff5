// Drives a real OIDC provider with plain fetch: discovery, client credentials, and the
// authorization code + PKCE sign-in through the provider's login form (manual redirects,
// a cookie jar). Shared by integration tests; e2e tests use Chromium for the same form.
import { createHash, randomBytes } from 'node:crypto';
import { base64url } from 'jose';

/** Anything with an issuer URL: a RunningDevProvider, or `{ issuer }`. */
export interface HasIssuer {
  issuer: string;
}

// ---------- small HTTP helpers (plain fetch, manual redirects, a cookie jar) ----------

export class CookieJar {
  private readonly cookies = new Map<string, string>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expires = attrs.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('expires='));
      const expired = expires !== undefined && Date.parse(expires.slice(8)) < Date.now();
      if (!value || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export async function send(url: string, jar: CookieJar, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const cookie = jar.header();
  if (cookie) headers.set('cookie', cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(res);
  return res;
}

/** Follows redirects until a non-redirect response or a Location that starts with `stopAt`. */
export async function follow(
  first: Response,
  from: string,
  jar: CookieJar,
  stopAt: string,
): Promise<{ res: Response; url: string; location?: string }> {
  let res = first;
  let url = from;
  for (let hops = 0; hops < 20; hops++) {
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) return { res, url };
    const next = new URL(location, url).href;
    if (next.startsWith(stopAt)) return { res, url, location: next };
    await res.arrayBuffer();
    url = next;
    res = await send(url, jar);
  }
  throw new Error('too many redirects');
}

export interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

export async function discovery(p: HasIssuer): Promise<Discovery> {
  return (await (await fetch(`${p.issuer}/.well-known/openid-configuration`)).json()) as Discovery;
}

export interface TokenResponse {
  access_token: string;
  id_token?: string;
  refresh_token?: string;
  expires_in: number;
  token_type: string;
  error?: string;
}

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

export async function tokenRequest(
  p: HasIssuer,
  body: Record<string, string>,
  auth?: { id: string; secret: string },
): Promise<TokenResponse> {
  const { token_endpoint } = await discovery(p);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth) headers.authorization = basic(auth.id, auth.secret);
  const res = await fetch(token_endpoint, { method: 'POST', headers, body: new URLSearchParams(body) });
  const json = (await res.json()) as TokenResponse;
  if (res.status !== 200) throw new Error(`token endpoint ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

export async function clientCredentials(p: HasIssuer, id = 'sallyport-ci', secret = 'ci-secret') {
  return tokenRequest(p, { grant_type: 'client_credentials' }, { id, secret });
}

export interface SignInOptions {
  clientId: string;
  clientSecret?: string;
  redirectUri: string;
  username: string;
  password: string;
}

/** Starts an authorization request and returns the login page. */
export async function openLoginPage(p: HasIssuer, o: SignInOptions) {
  const jar = new CookieJar();
  const verifier = base64url.encode(randomBytes(32));
  const challenge = base64url.encode(createHash('sha256').update(verifier).digest());
  const state = base64url.encode(randomBytes(16));
  const { authorization_endpoint } = await discovery(p);
  const auth = new URL(authorization_endpoint);
  auth.search = new URLSearchParams({
    client_id: o.clientId,
    response_type: 'code',
    redirect_uri: o.redirectUri,
    scope: 'openid profile email groups',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
  }).toString();
  const start = await send(auth.href, jar);
  const page = await follow(start, auth.href, jar, o.redirectUri);
  if (page.res.status !== 200) throw new Error(`login page answered ${page.res.status}`);
  const html = await page.res.text();
  return { jar, verifier, state, html, pageUrl: page.url };
}

export function formAction(html: string, pageUrl: string): string {
  const action = /<form[^>]*\baction="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error(`no form on page: ${html.slice(0, 300)}`);
  return new URL(action.replaceAll('&amp;', '&'), pageUrl).href;
}

export async function postLogin(jar: CookieJar, action: string, username: string, password: string) {
  return send(action, jar, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password }),
  });
}

/** Full authorization code + PKCE sign-in through the login form, then the code exchange. */
export async function signIn(p: HasIssuer, o: SignInOptions): Promise<TokenResponse> {
  const { jar, verifier, state, html, pageUrl } = await openLoginPage(p, o);
  const action = formAction(html, pageUrl);
  const posted = await postLogin(jar, action, o.username, o.password);
  const done = await follow(posted, action, jar, o.redirectUri);
  if (!done.location) throw new Error(`sign-in did not reach the redirect URI (HTTP ${done.res.status})`);
  const cb = new URL(done.location);
  if (cb.searchParams.get('state') !== state) throw new Error('state mismatch in redirect');
  if (cb.searchParams.get('iss') !== p.issuer)
    throw new Error(`iss mismatch in redirect: ${cb.searchParams.get('iss')}`);
  const code = cb.searchParams.get('code');
  if (!code) throw new Error(`no code in redirect: ${done.location}`);
  const body: Record<string, string> = {
    grant_type: 'authorization_code',
    code,
    redirect_uri: o.redirectUri,
    code_verifier: verifier,
  };
  if (!o.clientSecret) body.client_id = o.clientId;
  return tokenRequest(p, body, o.clientSecret ? { id: o.clientId, secret: o.clientSecret } : undefined);
}
