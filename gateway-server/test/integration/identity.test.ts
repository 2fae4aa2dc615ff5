// Identity against a real oidc-provider instance: real tokens from the token endpoint, a real
// authorization code + PKCE sign-in through the login form, and every rejection reason.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import {
  base64url,
  type CryptoKey,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTokenVerifier,
  type DevClient,
  type RunningDevProvider,
  startDevProvider,
  TokenError,
  type TokenRejection,
  type TokenVerifier,
} from '../../src/identity';
import {
  clientCredentials,
  discovery,
  follow,
  formAction,
  openLoginPage,
  postLogin,
  signIn,
  tokenRequest,
} from '../rig/oidc-login';

const AUDIENCE = 'sallyport';
const CLIENTS: DevClient[] = [
  { kind: 'public', clientId: 'sallyport-desktop', redirectUris: ['http://127.0.0.1/callback'] },
  {
    kind: 'confidential',
    clientId: 'sallyport-console',
    clientSecret: 'console-secret',
    redirectUris: ['http://127.0.0.1:9/console/callback'],
  },
  { kind: 'service', clientId: 'sallyport-ci', clientSecret: 'ci-secret', groups: ['developers', 'ci'] },
];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function rejection(v: TokenVerifier, header: string | undefined): Promise<TokenRejection> {
  try {
    await v.verify(header);
  } catch (err) {
    if (err instanceof TokenError) return err.code;
    throw err;
  }
  throw new Error('token was accepted');
}

function captureLog() {
  const warnings: string[] = [];
  return { warnings, log: { warn: (_o: object, m: string) => void warnings.push(m) } };
}

// ---------- fixtures ----------

let provider: RunningDevProvider;
let verifier: TokenVerifier;
let trustedKey: CryptoKey; // private half of the provider's signing key (the test forges with it)
let trustedPublic: CryptoKey;
const KID = 'test-signing-key';
const started: RunningDevProvider[] = [];

async function start(opts: Partial<Parameters<typeof startDevProvider>[0]> = {}) {
  const p = await startDevProvider({
    host: '127.0.0.1',
    port: 0,
    audience: AUDIENCE,
    clients: CLIENTS,
    ...opts,
  });
  started.push(p);
  return p;
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  trustedKey = pair.privateKey;
  trustedPublic = pair.publicKey;
  const jwk: JWK = { ...(await exportJWK(pair.privateKey)), alg: 'RS256', kid: KID };
  provider = await start({ signingKey: jwk });
  verifier = await createTokenVerifier({ issuer: provider.issuer, audience: AUDIENCE });
  await verifier.ready();
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
});

function forge(claims: JWTPayload, key: CryptoKey = trustedKey, kid = KID): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: provider.issuer,
    aud: AUDIENCE,
    sub: 'user-mallory',
    client_id: 'sallyport-desktop',
    groups: ['admins'],
    iat: now,
    nbf: now,
    exp: now + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid })
    .sign(key);
}

// ---------- tests ----------

describe('dev provider', () => {
  it('refuses to bind to a non-loopback address unless allowed', async () => {
    await expect(startDevProvider({ host: '0.0.0.0', port: 0, audience: AUDIENCE })).rejects.toThrow(
      /refusing to start the development identity provider on non-loopback address '0\.0\.0\.0'/,
    );
    await expect(startDevProvider({ host: '192.0.2.10', port: 0, audience: AUDIENCE })).rejects.toThrow(
      /non-loopback/,
    );
  });

  it('issues JWT access tokens with groups to service clients (client_credentials)', async () => {
    const tokens = await clientCredentials(provider);
    expect(tokens.token_type).toBe('Bearer');
    const header = decodeProtectedHeader(tokens.access_token);
    expect(header).toMatchObject({ alg: 'RS256', typ: 'at+jwt', kid: KID });
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({
      iss: provider.issuer,
      aud: AUDIENCE,
      sub: 'sallyport-ci',
      client_id: 'sallyport-ci',
      groups: ['developers', 'ci'],
    });
    expect(typeof claims.exp).toBe('number');
    expect(typeof claims.iat).toBe('number');
    expect(claims.nbf).toBe(claims.iat);

    const principal = await verifier.verify(`Bearer ${tokens.access_token}`);
    expect(principal).toEqual({
      subject: 'sallyport-ci',
      username: 'sallyport-ci',
      groups: ['developers', 'ci'],
      kind: 'service',
      tokenExpiresAt: new Date((claims.exp as number) * 1000),
    });
  });

  it('rejects a service client with a wrong secret', async () => {
    await expect(clientCredentials(provider, 'sallyport-ci', 'nope')).rejects.toThrow(/invalid_client/);
  });

  it('signs in alice through the login form (auth code + PKCE, loopback redirect on any port)', async () => {
    const tokens = await signIn(provider, {
      clientId: 'sallyport-desktop',
      redirectUri: 'http://127.0.0.1:54321/callback', // registered without a port (RFC 8252)
      username: 'alice',
      password: 'alice-demo',
    });
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({
      iss: provider.issuer,
      aud: AUDIENCE,
      sub: 'user-alice',
      client_id: 'sallyport-desktop',
      preferred_username: 'alice',
      email: 'alice@sallyport.test',
      name: 'Alice Developer',
      groups: ['developers'],
    });
    expect(tokens.id_token).toBeTruthy();
    expect(tokens.refresh_token).toBeTruthy();

    const principal = await verifier.verify(`Bearer ${tokens.access_token}`);
    expect(principal).toEqual({
      subject: 'user-alice',
      username: 'alice',
      name: 'Alice Developer',
      email: 'alice@sallyport.test',
      groups: ['developers'],
      kind: 'user',
      tokenExpiresAt: new Date((claims.exp as number) * 1000),
    });

    // A refresh keeps the audience and the groups.
    const refreshed = await tokenRequest(provider, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token as string,
      client_id: 'sallyport-desktop',
    });
    const again = await verifier.verify(`Bearer ${refreshed.access_token}`);
    expect(again).toMatchObject({ subject: 'user-alice', groups: ['developers'], kind: 'user' });
  });

  it('signs in bob through the confidential web-console client', async () => {
    const tokens = await signIn(provider, {
      clientId: 'sallyport-console',
      clientSecret: 'console-secret',
      redirectUri: 'http://127.0.0.1:9/console/callback',
      username: 'bob',
      password: 'bob-demo',
    });
    const principal = await verifier.verify(`Bearer ${tokens.access_token}`);
    expect(principal).toMatchObject({ username: 'bob', groups: ['approvers', 'developers'], kind: 'user' });
  });

  it('serves a real login form and rejects a wrong password', async () => {
    const o = {
      clientId: 'sallyport-desktop',
      redirectUri: 'http://127.0.0.1:40000/callback',
      username: 'alice',
      password: 'wrong',
    };
    const { jar, html, pageUrl } = await openLoginPage(provider, o);
    expect(html).toMatch(/<input[^>]*name="username"/);
    expect(html).toMatch(
      /<input[^>]*name="password"[^>]*type="password"|type="password"[^>]*name="password"/,
    );
    expect(html).toMatch(/<button type="submit"/);
    const action = formAction(html, pageUrl);
    expect(new URL(action).pathname).toMatch(/^\/interaction\/[\w-]+\/login$/);

    const bad = await postLogin(jar, action, 'alice', 'wrong');
    expect(bad.status).toBe(401);
    expect(await bad.text()).toContain('Invalid username or password');
    const unknown = await postLogin(jar, action, 'mallory', 'mallory-demo');
    expect(unknown.status).toBe(401);
    await unknown.arrayBuffer();

    // The same interaction still accepts the right password afterwards.
    const ok = await postLogin(jar, action, 'alice', 'alice-demo');
    const done = await follow(ok, action, jar, o.redirectUri);
    expect(done.location).toMatch(/^http:\/\/127\.0\.0\.1:40000\/callback\?code=/);
  });

  it('rejects a redirect URI that is not registered', async () => {
    const { authorization_endpoint } = await discovery(provider);
    const url = new URL(authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: 'sallyport-desktop',
      response_type: 'code',
      redirect_uri: 'http://127.0.0.1:54321/evil',
      scope: 'openid',
      code_challenge: base64url.encode(randomBytes(32)),
      code_challenge_method: 'S256',
    }).toString();
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('redirect_uri');
  });
});

describe('token verifier', () => {
  it('rejects a missing or non-bearer header', async () => {
    expect(await rejection(verifier, undefined)).toBe('missing');
    expect(await rejection(verifier, '')).toBe('missing');
    expect(await rejection(verifier, 'Basic YWxpY2U6YWxpY2UtZGVtbw==')).toBe('malformed');
    expect(await rejection(verifier, 'Bearer')).toBe('malformed');
  });

  it('rejects garbage', async () => {
    expect(await rejection(verifier, 'Bearer garbage')).toBe('malformed');
    expect(await rejection(verifier, 'Bearer a.b.c')).toBe('malformed');
  });

  it('accepts a token forged with the trusted key (sanity check for the forgery helper)', async () => {
    const principal = await verifier.verify(`Bearer ${await forge({})}`);
    expect(principal).toMatchObject({ subject: 'user-mallory', groups: ['admins'], kind: 'user' });
  });

  it('rejects an expired token (forged with the trusted key)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await forge({ iat: now - 600, nbf: now - 600, exp: now - 120 });
    expect(await rejection(verifier, `Bearer ${token}`)).toBe('expired');
  });

  it('rejects a real token after its TTL (provider with accessTokenTtlSeconds = 4, tolerance 0)', async () => {
    // 4 s, not 1: on a loaded machine the first verify must still land inside the token's life.
    const shortLived = await start({ accessTokenTtlSeconds: 4 });
    const strict = await createTokenVerifier({
      issuer: shortLived.issuer,
      audience: AUDIENCE,
      clockToleranceSeconds: 0,
    });
    await strict.ready();
    const { access_token, expires_in } = await clientCredentials(shortLived);
    expect(expires_in).toBe(4);
    await expect(strict.verify(`Bearer ${access_token}`)).resolves.toMatchObject({ kind: 'service' });
    const { exp } = JSON.parse(Buffer.from(access_token.split('.')[1]!, 'base64url').toString()) as {
      exp: number;
    };
    await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 1100));
    expect(await rejection(strict, `Bearer ${access_token}`)).toBe('expired');
  });

  it('rejects a token that is not yet valid', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await forge({ nbf: now + 600 });
    expect(await rejection(verifier, `Bearer ${token}`)).toBe('not_yet_valid');
  });

  it('rejects a token from another issuer, even one signed with the same key', async () => {
    const forged = await forge({ iss: 'http://127.0.0.1:1/other' });
    expect(await rejection(verifier, `Bearer ${forged}`)).toBe('wrong_issuer');

    // A real second provider that shares the signing key: valid signature, wrong issuer.
    const jwk: JWK = { ...(await exportJWK(trustedKey)), alg: 'RS256', kid: KID };
    const other = await start({ signingKey: jwk });
    const { access_token } = await clientCredentials(other);
    expect(await rejection(verifier, `Bearer ${access_token}`)).toBe('wrong_issuer');
  });

  it('rejects a token for another audience', async () => {
    const token = await forge({ aud: 'some-other-api' });
    expect(await rejection(verifier, `Bearer ${token}`)).toBe('wrong_audience');

    // The provider's own ID token has the client as audience: not usable as an access token.
    const tokens = await signIn(provider, {
      clientId: 'sallyport-desktop',
      redirectUri: 'http://127.0.0.1:1234/callback',
      username: 'carol',
      password: 'carol-demo',
    });
    expect(await rejection(verifier, `Bearer ${tokens.id_token}`)).toBe('wrong_audience');
  });

  it("rejects alg 'none'", async () => {
    const now = Math.floor(Date.now() / 1000);
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }));
    const payload = base64url.encode(
      JSON.stringify({
        iss: provider.issuer,
        aud: AUDIENCE,
        sub: 'user-mallory',
        groups: ['admins'],
        iat: now,
        exp: now + 300,
      }),
    );
    expect(await rejection(verifier, `Bearer ${header}.${payload}.`)).toBe('bad_algorithm');
  });

  it('rejects HS256 signed with the public key as HMAC secret (key confusion)', async () => {
    const pem = await exportSPKI(trustedPublic);
    const publicJwk = JSON.stringify(await exportJWK(trustedPublic));
    const now = Math.floor(Date.now() / 1000);
    for (const secret of [pem, publicJwk]) {
      const token = await new SignJWT({ groups: ['admins'] })
        .setProtectedHeader({ alg: 'HS256', kid: KID })
        .setIssuer(provider.issuer)
        .setAudience(AUDIENCE)
        .setSubject('user-mallory')
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(new TextEncoder().encode(secret));
      expect(await rejection(verifier, `Bearer ${token}`)).toBe('bad_algorithm');
    }
  });

  it('rejects a real token whose payload was tampered with', async () => {
    const { access_token } = await clientCredentials(provider);
    const [h, p, s] = access_token.split('.');
    const claims = JSON.parse(Buffer.from(p as string, 'base64url').toString('utf8')) as JWTPayload;
    claims.groups = ['admins'];
    const tampered = `${h}.${base64url.encode(JSON.stringify(claims))}.${s}`;
    expect(await rejection(verifier, `Bearer ${tampered}`)).toBe('bad_signature');
  });

  it('rejects a token signed by a key that is not in the JWKS', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    expect(await rejection(verifier, `Bearer ${await forge({}, privateKey, 'attacker-key')}`)).toBe(
      'unknown_key',
    );
    // Same kid as the trusted key, different key material.
    expect(await rejection(verifier, `Bearer ${await forge({}, privateKey, KID)}`)).toBe('bad_signature');
  });

  it('reads groups from a dotted claim path', async () => {
    const keycloakStyle = await createTokenVerifier({
      issuer: provider.issuer,
      audience: AUDIENCE,
      groupsClaim: 'realm_access.roles',
    });
    await keycloakStyle.ready();
    const token = await forge({ realm_access: { roles: ['approvers'] } });
    await expect(keycloakStyle.verify(`Bearer ${token}`)).resolves.toMatchObject({ groups: ['approvers'] });
  });

  it('refuses plain http issuers on non-loopback hosts and never allows none/HS*', async () => {
    await expect(
      createTokenVerifier({ issuer: 'http://idp.example.com', audience: AUDIENCE }),
    ).rejects.toThrow(/plain http/);
    await expect(
      createTokenVerifier({ issuer: provider.issuer, audience: AUDIENCE, algorithms: ['RS256', 'HS256'] }),
    ).rejects.toThrow(/never accepted/);
  });

  it('fails closed when the discovered issuer does not match the configured one', async () => {
    const { warnings, log } = captureLog();
    const mismatched = provider.issuer.replace('127.0.0.1', 'localhost');
    const v = await createTokenVerifier({ issuer: mismatched, audience: AUDIENCE }, log);
    expect(warnings[0]).toMatch(/does not match/);
    const { access_token } = await clientCredentials(provider);
    expect(await rejection(v, `Bearer ${access_token}`)).toBe('provider_unavailable');
  });

  it('starts while the provider is down, rejects with provider_unavailable, then recovers', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const { warnings, log } = captureLog();
    const v = await createTokenVerifier({ issuer, audience: AUDIENCE }, log);
    expect(warnings[0]).toMatch(new RegExp(`^identity provider ${issuer} unreachable: .+; retrying$`));

    const forgedForIt = await forge({ iss: issuer });
    expect(await rejection(v, `Bearer ${forgedForIt}`)).toBe('provider_unavailable');

    const late = await start({ port });
    expect(late.issuer).toBe(issuer);
    await v.ready();
    const { access_token } = await clientCredentials(late);
    await expect(v.verify(`Bearer ${access_token}`)).resolves.toMatchObject({
      subject: 'sallyport-ci',
      kind: 'service',
      groups: ['developers', 'ci'],
    });
  });
});
