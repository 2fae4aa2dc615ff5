import type { Role } from '@sallyport/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { rolesFor, TokenError } from '../identity';
import {
  consoleSessions,
  cookiesSecure,
  publicUrlOf,
  readCookie,
  SESSION_COOKIE,
  serializeCookie,
} from './console-session';
import type { ApiContext, Caller } from './context';
import { forbidden, HttpError } from './errors';

const reasonText: Record<string, string> = {
  missing: 'no bearer token: send Authorization: Bearer <access token>',
  malformed: 'the token is not a well-formed JWT',
  expired: 'the token has expired: sign in again',
  not_yet_valid: 'the token is not valid yet (nbf in the future; check clocks)',
  wrong_issuer: 'the token was issued by another identity provider',
  wrong_audience: 'the token is meant for another audience',
  bad_algorithm: 'the token is signed with an algorithm the gateway does not accept',
  bad_signature: 'the token signature does not verify',
  unknown_key: 'the token is signed with a key the identity provider does not publish',
  provider_unavailable: 'the identity provider cannot be reached; try again shortly',
};

/**
 * Resolves the caller from the Authorization header. Every rejection is a 401
 * with a stable reason code, a metric and an audit event.
 */
export async function authenticate(
  ctx: ApiContext,
  req: FastifyRequest,
  header: string | undefined,
): Promise<Caller> {
  const verifier = ctx.verifier();
  try {
    if (!verifier) throw new TokenError('provider_unavailable', 'identity provider not discovered yet');
    const principal = await verifier.verify(header);
    return { ...principal, roles: rolesFor(principal.groups, ctx.config.identity.roles) };
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    ctx.metrics.authRejections.inc({ reason: err.code });
    await ctx.ledger
      .append({
        kind: 'auth.rejected',
        actor: 'anonymous',
        actorKind: 'anonymous',
        data: {
          reason: err.code,
          ip: req.ip,
          method: req.method,
          path: req.routeOptions.url ?? req.url.split('?')[0],
          requestId: req.id,
        },
      })
      .catch((e: Error) => req.log.error({ err: e.message }, 'could not write auth.rejected audit event'));
    throw new HttpError(401, `token_${err.code}`, reasonText[err.code] ?? 'token rejected');
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/**
 * CSRF defence for cookie-authenticated requests: the browser's Origin must be
 * the gateway's own. Browsers send Origin on every non-GET request and on
 * WebSocket handshakes, and a page cannot forge it.
 */
export function assertSameOrigin(ctx: ApiContext, req: FastifyRequest): void {
  const origin = req.headers.origin;
  let own: string;
  try {
    own = new URL(publicUrlOf(ctx, req)).origin;
  } catch {
    own = '';
  }
  if (!origin || !own || origin !== own) {
    throw new HttpError(
      403,
      'csrf',
      'cross-origin request refused: cookie-authenticated calls must come from the console itself',
    );
  }
}

/**
 * The request's credential as an Authorization header value: the bearer token
 * it sent, or else the access token behind its console session cookie. Either
 * way it then goes through the same verifier.
 */
export async function credentialOf(
  ctx: ApiContext,
  req: FastifyRequest,
  opts: { websocket?: boolean } = {},
): Promise<string | undefined> {
  if (req.headers.authorization) return req.headers.authorization;
  const sessionId = readCookie(req.headers.cookie, SESSION_COOKIE);
  if (!sessionId) return undefined;
  if (opts.websocket || !SAFE_METHODS.has(req.method)) assertSameOrigin(ctx, req);
  const token = await consoleSessions(ctx).accessToken(sessionId);
  if (!token) throw new HttpError(401, 'session_expired', 'the console session has ended: sign in again');
  return `Bearer ${token}`;
}

export const clearSessionCookie = (ctx: ApiContext, req: FastifyRequest): string =>
  serializeCookie(SESSION_COOKIE, '', {
    path: '/',
    sameSite: 'Strict',
    secure: cookiesSecure(ctx, req),
    maxAge: 0,
  });

export function requireCaller(ctx: ApiContext) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    let header: string | undefined;
    try {
      header = await credentialOf(ctx, req);
    } catch (err) {
      if (err instanceof HttpError && err.code === 'session_expired')
        reply.header('set-cookie', clearSessionCookie(ctx, req));
      throw err;
    }
    req.caller = await authenticate(ctx, req, header);
  };
}

/**
 * WebSocket handshakes from the console carry the session cookie, not a
 * header: this onRequest hook turns a valid session into the Authorization
 * header the socket route authenticates with (after the Origin check that
 * stops cross-site WebSocket hijacking). Other requests are left alone.
 */
export function consoleSocketAuth(ctx: ApiContext) {
  return async (req: FastifyRequest) => {
    if (!req.ws || req.headers.authorization) return;
    const header = await credentialOf(ctx, req, { websocket: true });
    if (header) req.headers.authorization = header;
  };
}

export function requireRole(role: Role) {
  return async (req: FastifyRequest) => {
    if (!req.caller?.roles.includes(role)) throw forbidden(`this needs the ${role} role`);
  };
}

export const callerOf = (req: FastifyRequest): Caller => {
  if (!req.caller) throw new HttpError(401, 'token_missing', reasonText.missing!);
  return req.caller;
};
