import type { Me } from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import { callerOf, requireCaller } from '../auth';
import type { ApiContext, Caller } from '../context';

export const meOf = (c: Caller): Me => ({
  subject: c.subject,
  username: c.username,
  ...(c.name ? { name: c.name } : {}),
  ...(c.email ? { email: c.email } : {}),
  kind: c.kind,
  groups: c.groups,
  roles: c.roles,
  tokenExpiresAt: c.tokenExpiresAt.toISOString(),
});

export function meRoutes(app: FastifyInstance, ctx: ApiContext) {
  app.get('/api/me', { preHandler: requireCaller(ctx) }, async (req) => meOf(callerOf(req)));
}
