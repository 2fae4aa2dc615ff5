import { type Notification, ServerMessage, WsClose } from '@sallyport/protocol';
import { useEffect } from 'react';
import { create } from 'zustand';
import { useAudit } from '../audit/store';
import { useToasts } from '../components/toast';
import { useAccess } from './access';
import { useInbox } from './inbox';
import { type SessionStatus, useSession } from './session';
import { useTargets } from './targets';

/**
 * The console's live channel: one WebSocket to `/api/ws` per signed-in console,
 * authenticated by the session cookie. Notifications are dispatched into the stores;
 * after every (re)connect the stores are reloaded once, so nothing missed while the
 * socket was down stays missing. A slow periodic refresh is the fallback only.
 */
export type LiveStatus = 'offline' | 'connecting' | 'live' | 'reconnecting';

export interface EventsState {
  status: LiveStatus;
  /** When the next reconnect attempt is due (ms epoch), while reconnecting. */
  retryAt: number | null;
  /** Notifications received since sign-in. */
  received: number;
}

export const useEvents = create<EventsState>()(() => ({ status: 'offline', retryAt: null, received: 0 }));

export const selectLiveStatus = (s: EventsState) => s.status;

const BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 20_000, 30_000];
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
const FALLBACK_REFRESH_MS = 60_000;

/** Sends each notification to the stores that care. */
export function dispatchNotification(n: Notification): void {
  useEvents.setState((s) => ({ received: s.received + 1 }));
  useAccess.getState().onNotification(n);
  useInbox.getState().onNotification(n);
  // The targets list shows my access state per target.
  if (n.event.startsWith('request.') || n.event.startsWith('grant.')) {
    if (useTargets.getState().status !== 'idle') void useTargets.getState().load();
  }
}

/** Reloads everything the live channel keeps fresh. */
export function refreshAll(): void {
  void useAccess.getState().load();
  void useInbox.getState().load();
  void useTargets.getState().load();
}

class EventChannel {
  private ws: WebSocket | null = null;
  private stopped = true;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setInterval> | undefined;

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    window.addEventListener('online', this.onOnline);
    this.refreshTimer = setInterval(refreshAll, FALLBACK_REFRESH_MS);
    this.open();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.retryTimer);
    clearInterval(this.refreshTimer);
    this.stopHeartbeat();
    this.closeSocket();
    useEvents.setState({ status: 'offline', retryAt: null });
  }

  private readonly onOnline = () => {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.open();
  };

  private open(): void {
    const url = `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/api/ws`;
    useEvents.setState({ status: this.attempt === 0 ? 'connecting' : 'reconnecting', retryAt: null });
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (e) => this.onMessage(ws, e);
    ws.onclose = (e) => this.onClose(ws, e);
  }

  private onMessage(ws: WebSocket, e: MessageEvent): void {
    if (ws !== this.ws || typeof e.data !== 'string') return;
    let json: unknown;
    try {
      json = JSON.parse(e.data);
    } catch {
      return;
    }
    const parsed = ServerMessage.safeParse(json);
    if (!parsed.success) {
      console.warn('ignoring an event frame that does not match the protocol', parsed.error.issues[0]);
      return;
    }
    const msg = parsed.data;
    switch (msg.type) {
      case 'hello':
        this.attempt = 0;
        useEvents.setState({ status: 'live', retryAt: null });
        this.startHeartbeat(ws);
        refreshAll();
        return;
      case 'pong':
        clearTimeout(this.pongTimer);
        return;
      case 'notification':
        dispatchNotification(msg.notification);
        return;
      case 'error':
        console.warn(`event channel: ${msg.code}: ${msg.message}`);
        return;
    }
  }

  private onClose(ws: WebSocket, e: CloseEvent): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.stopHeartbeat();
    if (this.stopped) return;
    // The session ended (expired, signed out elsewhere): the session store decides what to show.
    if (e.code === WsClose.unauthorized) void useSession.getState().load();
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)]! * (0.8 + Math.random() * 0.4);
    this.attempt++;
    useEvents.setState({ status: 'reconnecting', retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) this.open();
    }, delay);
  }

  private startHeartbeat(ws: WebSocket): void {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ type: 'ping', id: String(Date.now()) }));
      clearTimeout(this.pongTimer);
      // No answer: the connection is dead without a close frame (sleep, network change).
      this.pongTimer = setTimeout(() => ws.close(), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  private stopHeartbeat(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  private closeSocket(): void {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onmessage = null;
    ws.onclose = null;
    // Closing a socket that is still connecting makes the browser log an error; wait for it.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
    else if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  }
}

const channel = new EventChannel();

/** Forgets what the previous user saw. */
function resetStores(): void {
  useAccess.getState().reset();
  useInbox.getState().reset();
  useAudit.getState().reset();
  useToasts.getState().clear();
}

/** Keeps the live channel open exactly while the console is signed in. */
export function useLiveEvents(status: SessionStatus): void {
  useEffect(() => {
    if (status !== 'signed-in') {
      if (status === 'signed-out') resetStores();
      return;
    }
    channel.start();
    return () => channel.stop();
  }, [status]);
}
