import {
  ApproveBody,
  CreateAccessRequest,
  DenyBody,
  type GrantsToReview,
  type GrantView,
  type RequestOutcome,
  type RequestView,
  ReviewGrantBody,
  RevokeBody,
} from '@sallyport/protocol';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AccessError } from '../../access/service';
import { callerOf, requireCaller } from '../auth';
import type { ApiContext } from '../context';
import { HttpError, validationError } from '../errors';
import { rateLimiter } from '../rate-limit';

export function parse<T>(schema: z.ZodType<T>, value: unknown, where: 'body' | 'params' | 'query'): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw validationError(r.error, where);
  return r.data;
}

const IdParams = z.object({ id: z.string().min(1).max(200) });
const RequestQuery = z.object({
  scope: z.enum(['mine', 'inbox', 'all']).default('mine'),
  status: z.enum(['pending', 'approved', 'denied', 'expired', 'cancelled']).optional(),
});
const GrantQuery = z.object({
  scope: z.enum(['mine', 'all']).default('mine'),
  status: z.enum(['active', 'revoked']).optional(),
});

/** AccessError → HttpError, keeping code and message. */
export async function mapAccess<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AccessError) throw new HttpError(err.status, err.code, err.message);
    throw err;
  }
}

export function accessRoutes(app: FastifyInstance, ctx: ApiContext) {
  // Requests, decisions and revocations per user per minute (config access.writesPerMinute).
  const WRITES_PER_MINUTE = ctx.config.access.writesPerMinute;
  const allow = rateLimiter(WRITES_PER_MINUTE, 60_000);
  const limited = async (req: Parameters<typeof callerOf>[0]) => {
    if (!allow(callerOf(req).username)) {
      throw new HttpError(
        429,
        'rate_limited',
        `more than ${WRITES_PER_MINUTE} access requests or decisions in a minute; slow down`,
      );
    }
  };
  const authed = { preHandler: requireCaller(ctx) };
  const authedWrite = { preHandler: [requireCaller(ctx), limited] };
  const access = () => {
    if (!ctx.access) throw new HttpError(503, 'unavailable', 'the access service is not running');
    return ctx.access;
  };

  app.post('/api/requests', authedWrite, async (req, reply: FastifyReply) => {
    const caller = callerOf(req);
    const parsed = CreateAccessRequest.safeParse(req.body ?? {});
    if (!parsed.success) {
      const err = validationError(parsed.error, 'body');
      await ctx.ledger.append({
        kind: 'access.refused',
        actor: caller.username,
        actorKind: caller.kind,
        data: { code: 'invalid_request', message: err.message },
      });
      throw err;
    }
    const outcome: RequestOutcome = await mapAccess(() => access().request(caller, parsed.data));
    return reply.status(outcome.outcome === 'granted' ? 201 : 202).send(outcome);
  });

  app.get('/api/requests', authed, async (req): Promise<{ requests: RequestView[] }> => {
    const q = parse(RequestQuery, req.query, 'query');
    return { requests: await mapAccess(() => access().listRequests(callerOf(req), q)) };
  });

  app.get('/api/requests/:id', authed, async (req): Promise<RequestView> => {
    const { id } = parse(IdParams, req.params, 'params');
    return mapAccess(() => access().getRequest(callerOf(req), id));
  });

  app.post('/api/requests/:id/approve', authedWrite, async (req) => {
    const { id } = parse(IdParams, req.params, 'params');
    const body = parse(ApproveBody, req.body, 'body');
    return mapAccess(() => access().approve(callerOf(req), id, body.reason));
  });

  app.post('/api/requests/:id/deny', authedWrite, async (req): Promise<RequestView> => {
    const { id } = parse(IdParams, req.params, 'params');
    const caller = callerOf(req);
    const parsed = DenyBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      const err = validationError(parsed.error, 'body');
      await ctx.ledger.append({
        kind: 'access.refused',
        actor: caller.username,
        actorKind: caller.kind,
        data: { code: 'invalid_request', message: `deny: ${err.message}`, requestIdGiven: id.slice(0, 64) },
      });
      throw err;
    }
    return mapAccess(() => access().deny(caller, id, parsed.data.reason));
  });

  app.post('/api/requests/:id/cancel', authedWrite, async (req): Promise<RequestView> => {
    const { id } = parse(IdParams, req.params, 'params');
    return mapAccess(() => access().cancel(callerOf(req), id));
  });

  app.get('/api/grants', authed, async (req): Promise<{ grants: GrantView[] }> => {
    const q = parse(GrantQuery, req.query, 'query');
    return { grants: await mapAccess(() => access().listGrants(callerOf(req), q)) };
  });

  app.get('/api/grants/to-review', authed, async (req): Promise<GrantsToReview> => {
    return { items: await mapAccess(() => access().breakGlassToReview(callerOf(req))) };
  });

  app.post('/api/grants/:id/review', authedWrite, async (req): Promise<GrantView> => {
    const { id } = parse(IdParams, req.params, 'params');
    const body = parse(ReviewGrantBody, req.body, 'body');
    return mapAccess(() => access().reviewBreakGlass(callerOf(req), id, body.note));
  });

  app.post('/api/grants/:id/revoke', authedWrite, async (req): Promise<GrantView> => {
    const { id } = parse(IdParams, req.params, 'params');
    const body = parse(RevokeBody, req.body, 'body');
    const caller = callerOf(req);
    return mapAccess(async () => {
      const g = await access().authorizeRevoke(caller, id);
      const [view] = await ctx.revoker!.revoke([g.id], caller, body.reason);
      if (!view) throw new AccessError(409, 'grant_revoked', 'this grant was revoked meanwhile');
      return view;
    });
  });
}
