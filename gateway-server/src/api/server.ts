import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { createGuardrails } from '../policy/guardrails';
import { consoleSocketAuth } from './auth';
import type { ApiContext } from './context';
import { errorHandler, HttpError, sendError } from './errors';
import { accessRoutes } from './routes/access';
import { auditRoutes } from './routes/audit';
import { consoleAuthRoutes } from './routes/console-auth';
import { eventsWsRoute } from './routes/events-ws';
import { healthRoutes } from './routes/health';
import { infoRoutes } from './routes/info';
import { meRoutes } from './routes/me';
import { policyRoutes } from './routes/policy';
import { recordingRoutes } from './routes/recordings';
import { reviewRoutes } from './routes/reviews';
import { sqlWsRoute } from './routes/sql-ws';
import { targetRoutes } from './routes/targets';
import { terminalWsRoute } from './routes/terminal-ws';

const REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

/** The web console's Content-Security-Policy: its own scripts only, no framing, no inline script. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self' ws: wss:",
  "img-src 'self' data:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/** Paths that never fall back to the console's index.html. */
const NOT_CONSOLE = /^\/(api|auth)(\/|$)|^\/(healthz|readyz|metrics)$/;

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
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('text/html'))
      reply.header('content-security-policy', CONSOLE_CSP);
    return payload;
  });
  const serveConsole = Boolean(ctx.consoleDir && existsSync(path.join(ctx.consoleDir, 'index.html')));
  app.setNotFoundHandler((req, reply) => {
    const pathname = req.url.split('?')[0] ?? '/';
    // Client-side routes of the console load its index.html; the console routes from there.
    if (
      serveConsole &&
      (req.method === 'GET' || req.method === 'HEAD') &&
      !NOT_CONSOLE.test(pathname) &&
      !path.extname(pathname) &&
      (req.headers.accept ?? '').includes('text/html')
    ) {
      return reply.header('cache-control', 'no-cache').sendFile('index.html');
    }
    return sendError(reply, req, new HttpError(404, 'not_found', `no route ${req.method} ${pathname}`));
  });

  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024 } });
  // After the websocket plugin's own hook, which marks upgrade requests (req.ws).
  app.addHook('onRequest', consoleSocketAuth(ctx));
  healthRoutes(app, ctx);
  infoRoutes(app, ctx);
  meRoutes(app, ctx);
  targetRoutes(app, ctx);
  accessRoutes(app, ctx);
  auditRoutes(app, ctx);
  policyRoutes(app, ctx);
  recordingRoutes(app, ctx);
  reviewRoutes(app, ctx);
  eventsWsRoute(app, ctx, (ws, caller) => ctx.onSocket?.(ws, caller));
  // Guardrail rules per target and level, from the config (policy/guardrails.ts).
  const guardrails = createGuardrails(ctx.config.guardrails);
  terminalWsRoute(app, ctx, { guardrails });
  sqlWsRoute(app, ctx, { guardrails });
  consoleAuthRoutes(app, ctx);

  if (ctx.consoleDir && serveConsole) {
    await app.register(fastifyStatic, {
      root: ctx.consoleDir,
      prefix: '/',
      wildcard: false,
      index: ['index.html'],
      cacheControl: false,
      // Hashed bundles never change; index.html is revalidated so a new build is picked up.
      setHeaders: (res, file) => {
        res.header(
          'cache-control',
          file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
      },
    });
  }
  return app;
}
