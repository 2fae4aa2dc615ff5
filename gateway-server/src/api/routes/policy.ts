import type { PolicyExplanation } from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { explain } from '../../policy';
import { callerOf, requireCaller } from '../auth';
import type { ApiContext } from '../context';
import { forbidden, notFound } from '../errors';
import { parse } from './access';

const ExplainQuery = z.object({
  user: z.string().min(1).max(200).optional(),
  groups: z.string().max(2000).optional(),
  target: z.string().min(1).max(100),
});

export function policyRoutes(app: FastifyInstance, ctx: ApiContext) {
  // Anyone may ask about themselves; asking about someone else needs admin or approver.
  app.get(
    '/api/policy/explain',
    { preHandler: requireCaller(ctx) },
    async (req): Promise<PolicyExplanation> => {
      const q = parse(ExplainQuery, req.query, 'query');
      const caller = callerOf(req);
      const user = q.user ?? caller.username;
      if (user !== caller.username && !caller.roles.some((r) => r === 'admin' || r === 'approver')) {
        throw forbidden('explaining another user needs the admin or approver role');
      }
      const target = await ctx.targets.get(q.target);
      if (!target) throw notFound(`target "${q.target}"`);
      let groups: string[];
      if (q.groups !== undefined)
        groups = q.groups
          .split(',')
          .map((g) => g.trim())
          .filter(Boolean);
      else if (user === caller.username) groups = caller.groups;
      else groups = (await ctx.access?.knownUser(user))?.groups ?? [];
      return explain(ctx.config.access, { username: user, groups }, target);
    },
  );
}
