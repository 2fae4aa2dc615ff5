import { z } from 'zod';
import { Notification } from './access';
import { Me } from './identity';

/**
 * The gateway's event channel (`/api/ws`). Browsers cannot set headers on a
 * WebSocket, so the first frame may carry the token; CLI and desktop may send
 * an Authorization header instead.
 */
export const ClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auth'), token: z.string().min(1).max(16_384) }).strict(),
  z.object({ type: z.literal('ping'), id: z.string().max(64) }).strict(),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

export const ServerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), me: Me }),
  z.object({ type: z.literal('pong'), id: z.string() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
  z.object({ type: z.literal('notification'), id: z.string(), at: z.string(), notification: Notification }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/** WebSocket close codes the gateway uses (4000–4999 are application-defined). */
export const WsClose = {
  unauthorized: 4401,
  authTimeout: 4408,
  tooManyBadFrames: 4400,
  shuttingDown: 1001,
} as const;
