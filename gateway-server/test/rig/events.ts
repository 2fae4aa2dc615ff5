import type { Notification, ServerMessage } from '@sallyport/protocol';
import WebSocket from 'ws';
import { recordTranscript } from './transcript';

/** A signed-in event socket that collects every frame and lets a test wait for the one it expects. */
export interface EventSocket {
  frames: ServerMessage[];
  notifications(): Notification[];
  waitFor<E extends Notification['event']>(
    event: E,
    match?: (n: Extract<Notification, { event: E }>) => boolean,
    timeoutMs?: number,
  ): Promise<Extract<Notification, { event: E }>>;
  close(): void;
}

export async function openEvents(gatewayUrl: string, token: string): Promise<EventSocket> {
  const ws = new WebSocket(`${gatewayUrl.replace(/^http/, 'ws')}/api/ws`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const frames: ServerMessage[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (d) => {
    recordTranscript('ws', String(d));
    frames.push(JSON.parse(String(d)) as ServerMessage);
    for (const w of waiters) w();
  });
  await new Promise<void>((resolve, reject) => {
    const onHello = () => {
      if (frames.some((f) => f.type === 'hello')) {
        waiters.delete(onHello);
        resolve();
      }
    };
    waiters.add(onHello);
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`event socket closed (${code}) before hello`)));
  });
  const notifications = () => frames.flatMap((f) => (f.type === 'notification' ? [f.notification] : []));
  return {
    frames,
    notifications,
    waitFor(event, match, timeoutMs = 10_000) {
      type N = Extract<Notification, { event: typeof event }>;
      const find = () => notifications().find((n): n is N => n.event === event && (!match || match(n as N)));
      return new Promise<N>((resolve, reject) => {
        const hit = find();
        if (hit) return resolve(hit);
        const check = () => {
          const h = find();
          if (h) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(h);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `no ${event} notification within ${timeoutMs} ms (got: ${
                notifications()
                  .map((n) => n.event)
                  .join(', ') || 'none'
              })`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close: () => ws.close(),
  };
}
