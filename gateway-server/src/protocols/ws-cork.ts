import type { WebSocket } from 'ws';

type Corkable = { cork(): void; uncork(): void };
const corked = new WeakSet<Corkable>();

/**
 * Frames sent to one client in the same callback (an SSH read holding several packets, a SQL
 * statement's columns/rows/done/complete) leave in one write to its socket instead of one each:
 * the socket is corked at the first and uncorked once the current callback and the microtasks
 * it queued are done. Nothing waits for I/O in between, so a lone frame (a keystroke's echo) is
 * not delayed. ws has no cork of its own: its socket (the internal `_socket`, a net.Socket) has.
 */
export function corkUntilCallbackEnd(ws: WebSocket): void {
  const socket = (ws as unknown as { _socket?: Corkable })._socket;
  if (!socket || corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  process.nextTick(() => {
    corked.delete(socket);
    socket.uncork();
  });
}
