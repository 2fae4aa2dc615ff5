import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** One registry per gateway instance, so tests can run several gateways in one process. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sallyport_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'sallyport_http_requests_total',
      help: 'HTTP requests by route and status code',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'sallyport_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    authRejections: new Counter({
      name: 'sallyport_auth_rejections_total',
      help: 'Bearer tokens rejected, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
