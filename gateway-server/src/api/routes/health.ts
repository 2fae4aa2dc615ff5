import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context';

export function healthRoutes(app: FastifyInstance, ctx: ApiContext) {
  // Liveness: the process serves requests. Nothing else is checked here on purpose.
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Readiness: the store answers and the identity provider has been discovered.
  app.get('/readyz', async (_req, reply) => {
    const checks: Record<string, string> = {};
    try {
      await ctx.store.ping();
      checks.store = 'ok';
    } catch (err) {
      checks.store = `unavailable: ${(err as Error).message}`;
    }
    const extra = (await ctx.readiness?.()) ?? {};
    for (const [name, problem] of Object.entries(extra)) checks[name] = problem ?? 'ok';
    const ok = Object.values(checks).every((v) => v === 'ok');
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks });
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
