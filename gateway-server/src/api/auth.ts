import type { Role } from '@sallyport/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { rolesFor, TokenError } from '../identity';
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

export function requireCaller(ctx: ApiContext) {
  return async (req: FastifyRequest, _reply: FastifyReply) => {
    req.caller = await authenticate(ctx, req, req.headers.authorization);
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
