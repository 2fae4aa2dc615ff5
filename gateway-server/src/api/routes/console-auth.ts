// Web console sign-in (OAuth 2.0 for Browser-Based Apps, backend-for-frontend pattern):
// the gateway runs the authorization code flow with PKCE as a confidential client, keeps
// the tokens server-side, and gives the browser an HttpOnly session cookie.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import { TokenError } from '../../identity';
import { assertSameOrigin, clearSessionCookie } from '../auth';
import {
  ConsoleAuthError,
  consoleSessions,
  cookiesSecure,
  discover,
  LOGIN_COOKIE,
  openJson,
  pkceChallenge,
  publicUrlOf,
  REAUTH_COOKIE,
  randomToken,
  readCookie,
  SESSION_COOKIE,
  SESSION_MAX_AGE_SECONDS,
  sealJson,
  serializeCookie,
  tokenEndpoint,
} from '../console-session';
import type { ApiContext } from '../context';
import { HttpError } from '../errors';
import { rateLimiter } from '../rate-limit';

const LOGIN_TTL_SECONDS = 600;
const SCOPE = 'openid profile email groups';

interface LoginState {
  state: string;
  nonce: string;
  verifier: string;
  exp: number;
}

const isLoginState = (v: unknown): v is LoginState => {
  const o = v as Partial<LoginState> | undefined;
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof o.state === 'string' &&
    typeof o.nonce === 'string' &&
    typeof o.verifier === 'string' &&
    typeof o.exp === 'number'
  );
};

/** Sign-in problems go back to the console, which explains them; the code is a fixed word, never input. */
const backToConsole = (reply: FastifyReply, code: string) =>
  reply.redirect(`/?signin_error=${encodeURIComponent(code)}`, 302);

export function consoleAuthRoutes(app: FastifyInstance, ctx: ApiContext) {
  const allow = rateLimiter(30, 60_000);
  const limited = (req: FastifyRequest) => {
    if (!allow(req.ip))
      throw new HttpError(429, 'rate_limited', 'too many sign-in attempts; wait a minute and try again');
  };
  const loginCookie = (req: FastifyRequest, value: string, maxAge: number) =>
    serializeCookie(LOGIN_COOKIE, value, {
      path: '/auth',
      // Lax: the provider's redirect back to /auth/callback is a top-level cross-site GET.
      sameSite: 'Lax',
      secure: cookiesSecure(ctx, req),
      maxAge,
    });

  app.get('/auth/login', async (req, reply) => {
    limited(req);
    reply.header('cache-control', 'no-store');
    const client = ctx.consoleClient;
    if (!client) return backToConsole(reply, 'not_configured');
    let authorizationEndpoint: string;
    try {
      authorizationEndpoint = (await discover(ctx.issuer())).authorization_endpoint;
    } catch (err) {
      req.log.warn({ err: (err as Error).message }, 'console sign-in: provider discovery failed');
      return backToConsole(reply, 'provider_unavailable');
    }
    const login: LoginState = {
      state: randomToken(),
      nonce: randomToken(),
      verifier: randomToken(48),
      exp: Date.now() + LOGIN_TTL_SECONDS * 1000,
    };
    const url = new URL(authorizationEndpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', client.clientId);
    url.searchParams.set('redirect_uri', `${publicUrlOf(ctx, req)}/auth/callback`);
    url.searchParams.set('scope', SCOPE);
    url.searchParams.set('state', login.state);
    url.searchParams.set('nonce', login.nonce);
    url.searchParams.set('code_challenge', pkceChallenge(login.verifier));
    url.searchParams.set('code_challenge_method', 'S256');
    // After an explicit sign-out, ask for the password again rather than reusing the provider's session.
    if (readCookie(req.headers.cookie, REAUTH_COOKIE)) url.searchParams.set('prompt', 'login');
    reply.header('set-cookie', loginCookie(req, sealJson(ctx, 'login', login), LOGIN_TTL_SECONDS));
    return reply.redirect(url.href, 302);
  });

  app.get('/auth/callback', async (req, reply) => {
    limited(req);
    reply.header('cache-control', 'no-store');
    const q = req.query as Record<string, unknown>;
    const param = (name: string) => (typeof q[name] === 'string' ? (q[name] as string) : undefined);
    const cookies: string[] = [loginCookie(req, '', 0)];
    reply.header('set-cookie', cookies);

    const sealed = readCookie(req.headers.cookie, LOGIN_COOKIE);
    const login = sealed ? openJson(ctx, 'login', sealed) : undefined;
    if (!isLoginState(login) || login.exp < Date.now()) return backToConsole(reply, 'expired');
    if (param('state') !== login.state) return backToConsole(reply, 'state');
    const providerError = param('error');
    if (providerError) return backToConsole(reply, providerError === 'access_denied' ? 'denied' : 'provider');
    const issuer = ctx.issuer();
    // RFC 9207: when the provider names itself, it must be the one we sent the browser to.
    const iss = param('iss');
    if (iss !== undefined && iss !== issuer) return backToConsole(reply, 'issuer');
    const code = param('code');
    const client = ctx.consoleClient;
    if (!code || !client) return backToConsole(reply, client ? 'provider' : 'not_configured');

    try {
      const tokens = await tokenEndpoint(ctx, {
        grant_type: 'authorization_code',
        code,
        redirect_uri: `${publicUrlOf(ctx, req)}/auth/callback`,
        code_verifier: login.verifier,
      });
      // The ID token came straight from the token endpoint over a checked channel
      // (OIDC Core 3.1.3.7): its claims are checked here, the signature is not needed.
      if (!tokens.id_token) throw new ConsoleAuthError('id_token', 'the provider sent no ID token');
      const id = decodeJwt(tokens.id_token);
      const aud = Array.isArray(id.aud) ? id.aud : [id.aud];
      if (id.nonce !== login.nonce) throw new ConsoleAuthError('id_token', 'ID token nonce mismatch');
      if (id.iss !== issuer || !aud.includes(client.clientId))
        throw new ConsoleAuthError('id_token', 'ID token issuer or audience mismatch');

      // The access token goes through the same verifier as any bearer token.
      const verifier = ctx.verifier();
      if (!verifier) throw new TokenError('provider_unavailable', 'identity provider not discovered yet');
      const principal = await verifier.verify(`Bearer ${tokens.access_token}`);
      if (principal.subject !== id.sub) throw new ConsoleAuthError('id_token', 'ID token subject mismatch');

      const sessionId = consoleSessions(ctx).create({
        subject: principal.subject,
        username: principal.username,
        kind: principal.kind,
        accessToken: tokens.access_token,
        ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
        expiresAt: principal.tokenExpiresAt.getTime(),
      });
      const secure = cookiesSecure(ctx, req);
      cookies.push(
        serializeCookie(SESSION_COOKIE, sessionId, {
          path: '/',
          sameSite: 'Strict',
          secure,
          maxAge: SESSION_MAX_AGE_SECONDS,
        }),
        serializeCookie(REAUTH_COOKIE, '', { path: '/auth', sameSite: 'Lax', secure, maxAge: 0 }),
      );
      reply.header('set-cookie', cookies);
      await ctx.ledger.append({
        kind: 'console.signed_in',
        actor: principal.username,
        actorKind: principal.kind,
        data: { ip: req.ip, requestId: req.id },
      });
      return reply.redirect('/', 302);
    } catch (err) {
      const reason =
        err instanceof ConsoleAuthError ? err.code : err instanceof TokenError ? `token_${err.code}` : null;
      if (reason === null) throw err;
      req.log.warn({ reason, err: (err as Error).message }, 'console sign-in failed');
      return backToConsole(reply, reason.startsWith('provider') ? 'provider_unavailable' : 'failed');
    }
  });

  app.post('/auth/logout', async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const sessionId = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (sessionId) {
      assertSameOrigin(ctx, req);
      const ended = consoleSessions(ctx).destroy(sessionId);
      if (ended) {
        await ctx.ledger.append({
          kind: 'console.signed_out',
          actor: ended.username,
          actorKind: ended.kind,
          data: { ip: req.ip, requestId: req.id },
        });
      }
    }
    reply.header('set-cookie', [
      clearSessionCookie(ctx, req),
      serializeCookie(REAUTH_COOKIE, '1', {
        path: '/auth',
        sameSite: 'Lax',
        secure: cookiesSecure(ctx, req),
        maxAge: 24 * 3600,
      }),
    ]);
    return reply.status(204).send();
  });
}
