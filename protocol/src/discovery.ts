import { z } from 'zod';

/** Public, unauthenticated: what a client needs to sign in to this gateway. */
export const GatewayInfo = z.object({
  name: z.literal('sallyport'),
  version: z.string(),
  issuer: z.string(),
  audience: z.string(),
  clients: z.object({ desktop: z.string(), cli: z.string(), console: z.string().optional() }),
  devProvider: z.boolean(),
});
export type GatewayInfo = z.infer<typeof GatewayInfo>;
