import { ReviewDecisionBody, ReviewDenyBody, type ReviewView } from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { callerOf, requireCaller } from '../auth';
import type { ApiContext } from '../context';
import { HttpError } from '../errors';
import { mapAccess, parse } from './access';

const IdParams = z.object({ id: z.string().min(1).max(200) });
const ListQuery = z.object({
  scope: z.enum(['inbox', 'mine', 'all']).default('inbox'),
  status: z.enum(['pending', 'approved', 'denied', 'expired', 'used', 'cancelled']).optional(),
});

/** Held statements and command lines: approvers list and decide them here. */
export function reviewRoutes(app: FastifyInstance, ctx: ApiContext) {
  const authed = { preHandler: requireCaller(ctx) };
  const reviews = () => {
    if (!ctx.reviews) throw new HttpError(503, 'unavailable', 'reviews are not available');
    return ctx.reviews;
  };

  app.get('/api/reviews', authed, async (req): Promise<{ reviews: ReviewView[] }> => {
    const q = parse(ListQuery, req.query, 'query');
    return { reviews: await mapAccess(() => reviews().list(callerOf(req), q)) };
  });

  app.post('/api/reviews/:id/approve', authed, async (req): Promise<ReviewView> => {
    const { id } = parse(IdParams, req.params, 'params');
    const body = parse(ReviewDecisionBody, req.body, 'body');
    return mapAccess(() => reviews().approve(callerOf(req), id, body.reason));
  });

  app.post('/api/reviews/:id/deny', authed, async (req): Promise<ReviewView> => {
    const { id } = parse(IdParams, req.params, 'params');
    const body = parse(ReviewDenyBody, req.body, 'body');
    return mapAccess(() => reviews().deny(callerOf(req), id, body.reason));
  });
}
