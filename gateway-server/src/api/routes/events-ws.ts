import { ClientMessage, type ServerMessage, WsClose } from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { authenticate } from '../auth';
import type { ApiContext, Caller } from '../context';
import { HttpError } from '../errors';
import { meOf } from './me';

const AUTH_TIMEOUT_MS = 10_000;
const MAX_BAD_FRAMES = 5;
const MAX_FRAME_BYTES = 64 * 1024;

const send = (ws: WebSocket, msg: ServerMessage) => {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
};

/**
 * The per-user event channel. Authenticates from the Authorization header or
 * the first frame; malformed frames get an error frame naming the problem, and
 * a client that keeps sending them is disconnected.
 */
export function eventsWsRoute(
  app: FastifyInstance,
  ctx: ApiContext,
  onCaller?: (ws: WebSocket, caller: Caller) => void,
) {
  app.get('/api/ws', { websocket: true }, (ws, req) => {
    let caller: Caller | undefined;
    let badFrames = 0;
    const welcome = (c: Caller) => {
      caller = c;
      clearTimeout(timer);
      send(ws, { type: 'hello', me: meOf(c) });
      onCaller?.(ws, c);
    };
    const refuse = (err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(401, 'unauthorized', 'unauthorized');
      send(ws, { type: 'error', code: e.code, message: e.message });
      ws.close(WsClose.unauthorized, e.code.slice(0, 100));
    };
    const timer = setTimeout(() => {
      if (!caller) {
        send(ws, { type: 'error', code: 'auth_timeout', message: 'send {"type":"auth","token":…} first' });
        ws.close(WsClose.authTimeout, 'auth_timeout');
      }
    }, AUTH_TIMEOUT_MS);

    if (req.headers.authorization) {
      authenticate(ctx, req, req.headers.authorization).then(welcome, refuse);
    }

    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      const bad = (code: string, message: string) => {
        send(ws, { type: 'error', code, message });
        if (++badFrames >= MAX_BAD_FRAMES) ws.close(WsClose.tooManyBadFrames, 'too_many_bad_frames');
      };
      if (isBinary) return bad('bad_frame', 'binary frames are not accepted on this channel');
      if (raw.length > MAX_FRAME_BYTES) return bad('bad_frame', `frame larger than ${MAX_FRAME_BYTES} bytes`);
      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        return bad('bad_frame', 'frame is not valid JSON');
      }
      const parsed = ClientMessage.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return bad(
          'bad_frame',
          `frame does not match the protocol: ${issue?.path.join('.') || 'type'}: ${issue?.message ?? 'invalid'}`,
        );
      }
      const msg = parsed.data;
      if (msg.type === 'auth') {
        if (caller) return bad('already_authenticated', 'this socket is already authenticated');
        authenticate(ctx, req, `Bearer ${msg.token}`).then(welcome, refuse);
        return;
      }
      if (!caller) return bad('unauthenticated', 'authenticate first');
      if (msg.type === 'ping') send(ws, { type: 'pong', id: msg.id });
    });
    ws.on('close', () => clearTimeout(timer));
    ws.on('error', (err) => req.log.warn({ err: err.message }, 'websocket error'));
  });
}
