/**
 * The main process's own connection to the gateway's event channel (`/api/ws`), so
 * approvers get OS notifications and the badge even when the window is closed to
 * the tray. Authenticates with the first frame (`{type:'auth'}`), parses every
 * message with the protocol schema, reconnects with backoff. The WebSocket
 * implementation is injected: the WHATWG `WebSocket` in Electron's main process,
 * the `ws` package in tests under Node 20.
 */
import { type ServerMessage, ServerMessage as ServerMessageSchema, WsClose } from '@sallyport/protocol';

/** The part of the WHATWG WebSocket API used here (also satisfied by the `ws` package). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

export type EventsState = 'idle' | 'connecting' | 'open' | 'unauthorized' | 'waiting';

export interface GatewayEventsOptions {
  gatewayUrl: string;
  /** A current access token (refreshed by the token store), or undefined when signed out. */
  token: () => Promise<string | undefined>;
  socket: SocketFactory;
  onMessage: (msg: ServerMessage) => void;
  onState?: (state: EventsState, detail?: string) => void;
  /** Reconnect backoff, ms. Default 1 s doubling to 60 s. */
  minDelayMs?: number;
  maxDelayMs?: number;
}

export function eventsUrl(gatewayUrl: string): string {
  const u = new URL('/api/ws', gatewayUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

export interface GatewayEvents {
  /** Connects (again) now, e.g. after sign-in. */
  start(): void;
  /** Disconnects and stays disconnected (sign-out, quit). */
  stop(): void;
  readonly state: EventsState;
}

export function createGatewayEvents(opts: GatewayEventsOptions): GatewayEvents {
  const url = eventsUrl(opts.gatewayUrl);
  const min = opts.minDelayMs ?? 1_000;
  const max = opts.maxDelayMs ?? 60_000;
  let ws: SocketLike | undefined;
  let timer: NodeJS.Timeout | undefined;
  let delay = min;
  let running = false;
  let generation = 0;
  let state: EventsState = 'idle';

  const setState = (s: EventsState, detail?: string) => {
    state = s;
    opts.onState?.(s, detail);
  };

  const retry = (detail: string) => {
    if (!running) return;
    setState('waiting', detail);
    clearTimeout(timer);
    timer = setTimeout(() => void connect(), delay);
    timer.unref?.();
    delay = Math.min(delay * 2, max);
  };

  async function connect(): Promise<void> {
    const gen = ++generation;
    const token = await opts.token().catch(() => undefined);
    if (!running || gen !== generation) return;
    if (!token) {
      setState('unauthorized', 'not signed in');
      return;
    }
    setState('connecting');
    let sock: SocketLike;
    try {
      sock = opts.socket(url);
    } catch (err) {
      retry((err as Error).message);
      return;
    }
    ws = sock;
    sock.onopen = () => sock.send(JSON.stringify({ type: 'auth', token }));
    sock.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let json: unknown;
      try {
        json = JSON.parse(ev.data);
      } catch {
        return;
      }
      const parsed = ServerMessageSchema.safeParse(json);
      if (!parsed.success) return;
      if (parsed.data.type === 'hello') {
        delay = min;
        setState('open');
      }
      opts.onMessage(parsed.data);
    };
    sock.onerror = () => {
      // onclose follows and decides.
    };
    sock.onclose = (ev) => {
      if (ws === sock) ws = undefined;
      if (!running || gen !== generation) return;
      if (ev.code === WsClose.unauthorized) {
        // The token was refused: ask the token store again (it refreshes), once, after a pause.
        setState('unauthorized', ev.reason || 'unauthorized');
        retry('token refused');
        return;
      }
      retry(`closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`);
    };
  }

  return {
    start() {
      running = true;
      delay = min;
      clearTimeout(timer);
      const old = ws;
      ws = undefined;
      generation++;
      old?.close(1000, 'reconnect');
      void connect();
    },
    stop() {
      running = false;
      generation++;
      clearTimeout(timer);
      ws?.close(1000, 'bye');
      ws = undefined;
      setState('idle');
    },
    get state() {
      return state;
    },
  };
}
