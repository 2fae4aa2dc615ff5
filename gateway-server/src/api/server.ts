import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { ApiContext } from './context';
import { errorHandler, HttpError, sendError } from './errors';
import { eventsWsRoute } from './routes/events-ws';
import { healthRoutes } from './routes/health';
import { infoRoutes } from './routes/info';
import { meRoutes } from './routes/me';
import { targetRoutes } from './routes/targets';

const REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

export interface ApiOptions {
  https?: { key: Buffer; cert: Buffer; ca?: Buffer };
  trustProxy?: boolean;
}

/** Builds the HTTP + WebSocket server. Listening is the caller's job. */
export async function buildApi(ctx: ApiContext, opts: ApiOptions = {}): Promise<FastifyInstance> {
  const base: FastifyServerOptions = {
    loggerInstance: ctx.log,
    bodyLimit: 1024 * 1024,
    trustProxy: opts.trustProxy ?? false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
  };
  // The https overload of Fastify() has a different server type; the routes do not care which.
  const app = (opts.https
    ? Fastify({ ...base, https: opts.https } as FastifyServerOptions)
    : Fastify(base)) as unknown as FastifyInstance;

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    ctx.metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, req, new HttpError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`)),
  );

  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024 } });
  healthRoutes(app, ctx);
  infoRoutes(app, ctx);
  meRoutes(app, ctx);
  targetRoutes(app, ctx);
  eventsWsRoute(app, ctx);

  if (ctx.consoleDir && existsSync(ctx.consoleDir)) {
    await app.register(fastifyStatic, {
      root: ctx.consoleDir,
      prefix: '/',
      wildcard: false,
      index: ['index.html'],
    });
  }
  return app;
}
