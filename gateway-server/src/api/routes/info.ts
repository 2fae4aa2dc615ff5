import type { GatewayInfo } from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context';

export const VERSION = '0.1.0';

export function infoRoutes(app: FastifyInstance, ctx: ApiContext) {
  app.get(
    '/api/info',
    async (): Promise<GatewayInfo> => ({
      name: 'sallyport',
      version: VERSION,
      issuer: ctx.issuer(),
      audience: ctx.config.identity.audience,
      clients: { desktop: 'sallyport-desktop', cli: 'sallyport-cli', console: 'sallyport-console' },
      devProvider: ctx.config.identity.devProvider.enabled,
    }),
  );
}
