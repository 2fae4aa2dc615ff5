/**
 * Gateway notifications (the `/api/ws` event channel) → OS notifications and the
 * approver inbox badge. Pure mapping plus a small stateful centre; the Electron
 * layer only turns an `OsNotification` into `new Notification(...)` and the badge
 * into `app.setBadgeCount` / the tray.
 *
 * OS notifications appear on lock screens and in notification history, so they
 * carry who/what/where and the request's reason, never statement or command text.
 */
import type { Notification, ServerMessage } from '@sallyport/protocol';
import type { AppPath } from '../common/ipc-contract';

export interface OsNotification {
  title: string;
  body: string;
  /** Where a click takes the window (a console screen). */
  path: AppPath;
  urgency: 'normal' | 'critical';
  /** Stable per subject, so a later notification about the same thing replaces the earlier one. */
  tag: string;
}

export interface Me {
  username: string;
}

/** Removes control and bidi-override characters, collapses whitespace, clips to `max`. */
export function plainText(value: string, max: number): string {
  const clean = value
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return clean.length > max ? `${clean.slice(0, max - 1).trimEnd()}…` : clean;
}

/** Some Linux notification servers render a subset of HTML in the body; show it as text there. */
export function escapeNotificationMarkup(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  const rm = m % 60;
  if (h < 48) return rm ? `${h} h ${rm} min` : `${h} h`;
  const d = Math.floor(h / 24);
  const rh = h % 24;
  return rh ? `${d} d ${rh} h` : `${d} d`;
}

const T = 64; // clip for names and ids in titles
const REASON = 160;

// Clicks open the console screen where the user acts: approvers their inbox, requesters
// their access list (the console's routes, renderer/src/components/nav.ts).
const INBOX: AppPath = '/inbox';
const MY_ACCESS: AppPath = '/access';

/** The OS notification for one gateway notification, or null when this user should not be disturbed. */
export function toOsNotification(n: Notification, me: Me): OsNotification | null {
  const t = (s: string) => plainText(s, T);
  switch (n.event) {
    case 'request.pending': {
      const r = n.request;
      if (r.requester === me.username) return null;
      return {
        title: `Access request from ${t(r.requester)}`,
        body: plainText(
          `${r.level} on ${r.targetId} for ${humanDuration(r.durationSeconds)}: ${r.reason}`,
          REASON + T,
        ),
        path: INBOX,
        urgency: 'normal',
        tag: `request:${r.id}`,
      };
    }
    case 'request.decided': {
      const r = n.request;
      if (r.requester !== me.username) return null; // approvers: only the badge changes
      if (r.status === 'cancelled') return null; // the requester did it
      const by = r.decidedBy ? ` by ${t(r.decidedBy)}` : '';
      if (r.status === 'approved') {
        const until = n.grant ? ` until ${timeOfDay(n.grant.expiresAt)}` : '';
        return {
          title: `Access granted: ${t(r.targetId)}`,
          body: plainText(`${r.level} access approved${by}${until}.`, REASON),
          path: MY_ACCESS,
          urgency: 'normal',
          tag: `request:${r.id}`,
        };
      }
      const why = r.decisionReason ? `: ${r.decisionReason}` : '.';
      return {
        title: `Access ${r.status}: ${t(r.targetId)}`,
        body: plainText(`Your ${r.level} request was ${r.status}${by}${why}`, REASON + T),
        path: MY_ACCESS,
        urgency: 'normal',
        tag: `request:${r.id}`,
      };
    }
    case 'request.expired': {
      const r = n.request;
      if (r.requester !== me.username) return null;
      return {
        title: `Request expired: ${t(r.targetId)}`,
        body: plainText(`Nobody approved your ${r.level} request in time.`, REASON),
        path: MY_ACCESS,
        urgency: 'normal',
        tag: `request:${r.id}`,
      };
    }
    case 'grant.break_glass': {
      const r = n.request;
      return {
        title: `Break-glass: ${t(r.requester)} on ${t(r.targetId)}`,
        body: plainText(
          `${r.level} for ${humanDuration(r.durationSeconds)} without approval: ${r.reason}. Review required.`,
          REASON + T,
        ),
        path: INBOX,
        urgency: 'critical',
        tag: `request:${r.id}`,
      };
    }
    case 'grant.expiring': {
      const g = n.grant;
      if (g.holder !== me.username) return null;
      return {
        title: `Access ends in ${humanDuration(n.secondsLeft)}: ${t(g.targetId)}`,
        body: plainText(
          `Your ${g.level} access ends at ${timeOfDay(g.expiresAt)}. Request more time if you need it.`,
          REASON,
        ),
        path: MY_ACCESS,
        urgency: 'normal',
        tag: `grant:${g.id}`,
      };
    }
    case 'grant.revoked': {
      const g = n.grant;
      if (g.holder !== me.username) return null;
      const by = g.revokedBy ? ` by ${t(g.revokedBy)}` : '';
      return {
        title: `Access revoked: ${t(g.targetId)}`,
        body: plainText(`Your ${g.level} access was revoked${by}: ${n.reason}`, REASON + T),
        path: MY_ACCESS,
        urgency: 'critical',
        tag: `grant:${g.id}`,
      };
    }
    case 'grant.reviewed':
      // The holder sees it in their access list; other approvers' inboxes just lose the item.
      return null;
    case 'review.pending': {
      const r = n.review;
      if (r.requester === me.username) return null;
      const what = r.kind === 'sql' ? 'SQL statement' : 'command';
      return {
        title: `Review needed: ${what} on ${t(r.targetId)}`,
        body: plainText(
          `${r.requester} wants to run a ${what} held by rule ${r.rule}: ${r.message}`,
          REASON + T,
        ),
        path: INBOX,
        urgency: 'normal',
        tag: `review:${r.id}`,
      };
    }
    case 'review.decided': {
      const r = n.review;
      if (r.requester !== me.username) return null;
      const what = r.kind === 'sql' ? 'statement' : 'command';
      const by = r.decidedBy ? ` by ${t(r.decidedBy)}` : '';
      return {
        title: `Your ${what} was ${r.status}: ${t(r.targetId)}`,
        body: plainText(
          r.status === 'approved'
            ? `Approved${by}; it runs once, exactly as submitted.`
            : `${r.status}${by}${r.decisionReason ? `: ${r.decisionReason}` : '.'}`,
          REASON,
        ),
        path: MY_ACCESS,
        urgency: 'normal',
        tag: `review:${r.id}`,
      };
    }
  }
}

function timeOfDay(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** What a notification does to this user's inbox (items waiting for their decision). */
export function inboxEffect(n: Notification, me: Me): { add?: string; remove?: string } {
  switch (n.event) {
    case 'request.pending':
      return n.request.requester === me.username ? {} : { add: `request:${n.request.id}` };
    case 'request.decided':
    case 'request.expired':
      return { remove: `request:${n.request.id}` };
    case 'review.pending':
      return n.review.requester === me.username ? {} : { add: `review:${n.review.id}` };
    case 'review.decided':
      return { remove: `review:${n.review.id}` };
    default:
      return {};
  }
}

export interface InboxSnapshot {
  requestIds: string[];
  reviewIds: string[];
}

export interface NotificationCenterOptions {
  /** The signed-in user; notifications arriving while signed out are ignored. */
  me: () => Me | undefined;
  show: (n: OsNotification) => void;
  /**
   * Whether the main process should show OS notifications itself. While the console is
   * open it shows them (through the bridge) from its own event channel, so the app
   * shows them only when the window is closed to the tray: never twice.
   */
  shouldShow?: () => boolean;
  badge: (count: number) => void;
  /**
   * The authoritative inbox from the gateway (pending requests and reviews this user
   * may decide). Events adjust the badge at once; this corrects it, because a
   * decision by another approver is not pushed to everyone.
   */
  fetchInbox?: () => Promise<InboxSnapshot>;
  /** How many recent message ids to remember so a replayed message is not shown twice. */
  dedupe?: number;
}

export class NotificationCenter {
  private readonly items = new Set<string>();
  private readonly seen: string[] = [];
  private readonly seenSet = new Set<string>();
  private lastBadge = -1;

  constructor(private readonly opts: NotificationCenterOptions) {}

  get count(): number {
    return this.items.size;
  }

  /** Feed every server message; returns what was shown, if anything. The badge always follows. */
  handle(msg: ServerMessage): OsNotification | null {
    if (msg.type !== 'notification') return null;
    const me = this.opts.me();
    if (!me) return null;
    if (this.seenSet.has(msg.id)) return null;
    this.remember(msg.id);
    const effect = inboxEffect(msg.notification, me);
    if (effect.add) this.items.add(effect.add);
    if (effect.remove) this.items.delete(effect.remove);
    this.publishBadge();
    const os = toOsNotification(msg.notification, me);
    if (!os || (this.opts.shouldShow && !this.opts.shouldShow())) return null;
    this.opts.show(os);
    return os;
  }

  /** Replaces the inbox with the gateway's view. */
  async resync(): Promise<number> {
    if (!this.opts.fetchInbox || !this.opts.me()) return this.count;
    const snap = await this.opts.fetchInbox();
    this.items.clear();
    for (const id of snap.requestIds) this.items.add(`request:${id}`);
    for (const id of snap.reviewIds) this.items.add(`review:${id}`);
    this.publishBadge();
    return this.count;
  }

  /** Sign-out: nothing waits for a user who is not there. */
  clear(): void {
    this.items.clear();
    this.seen.length = 0;
    this.seenSet.clear();
    this.publishBadge();
  }

  private publishBadge(): void {
    if (this.items.size === this.lastBadge) return;
    this.lastBadge = this.items.size;
    this.opts.badge(this.items.size);
  }

  private remember(id: string): void {
    this.seen.push(id);
    this.seenSet.add(id);
    const max = this.opts.dedupe ?? 500;
    while (this.seen.length > max) this.seenSet.delete(this.seen.shift()!);
  }
}
