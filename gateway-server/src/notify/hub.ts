import { randomUUID } from 'node:crypto';
import type { Notification, ServerMessage } from '@sallyport/protocol';
import type { WebSocket } from 'ws';
import type { Notifier } from '../access/service';

interface Subscriber {
  ws: WebSocket;
  username: string;
  groups: string[];
}

/** Bound on what one slow client may queue before it is dropped instead of growing memory. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * Live push to connected users. A user may have several sockets (app, console,
 * CLI --wait); each gets every notification meant for that user.
 */
export class NotificationHub {
  private readonly subscribers = new Set<Subscriber>();

  add(ws: WebSocket, who: { username: string; groups: string[] }): void {
    const sub = { ws, username: who.username, groups: who.groups };
    this.subscribers.add(sub);
    ws.once('close', () => this.subscribers.delete(sub));
  }

  get size(): number {
    return this.subscribers.size;
  }

  private send(sub: Subscriber, n: Notification): void {
    if (sub.ws.readyState !== sub.ws.OPEN) return;
    if (sub.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      sub.ws.close(1013, 'too slow');
      return;
    }
    const msg: ServerMessage = {
      type: 'notification',
      id: randomUUID(),
      at: new Date().toISOString(),
      notification: n,
    };
    sub.ws.send(JSON.stringify(msg));
  }

  toUser(username: string, n: Notification): void {
    for (const s of this.subscribers) if (s.username === username) this.send(s, n);
  }

  toApprovers(approvers: { users: string[]; groups: string[] }, exclude: string, n: Notification): void {
    for (const s of this.subscribers) {
      if (s.username === exclude) continue;
      if (approvers.users.includes(s.username) || approvers.groups.some((g) => s.groups.includes(g)))
        this.send(s, n);
    }
  }
}

export function hubNotifier(hub: NotificationHub, external: (n: Notification) => Promise<void>): Notifier {
  return {
    toUser: (u, n) => hub.toUser(u, n),
    toApprovers: (a, x, n) => hub.toApprovers(a, x, n),
    external,
  };
}
