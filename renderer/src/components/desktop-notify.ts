import { platform } from '../platform';

/**
 * An OS notification through the desktop bridge. In the browser there is none: the
 * sidebar says so (the platform note), and the in-app toast carries the news.
 */
export function desktopNotify(title: string, body: string): void {
  const n = platform.notifications;
  if (!n?.available) return;
  n.notify({ title, body }).catch(() => {});
}
