import type { GrantView, Notification, RequestView, ReviewView, ServerMessage } from '@sallyport/protocol';
import { describe, expect, it } from 'vitest';
import { AppPath } from '../../src/common/ipc-contract';
import {
  escapeNotificationMarkup,
  humanDuration,
  inboxEffect,
  NotificationCenter,
  type OsNotification,
  plainText,
  toOsNotification,
} from '../../src/node/notifications';

const alice = { username: 'alice' };
const bob = { username: 'bob' };

function request(over: Partial<RequestView> = {}): RequestView {
  return {
    id: '11111111-1111-4111-8111-111111111111',
    requester: 'alice',
    targetId: 'orders-db',
    level: 'read',
    durationSeconds: 7200,
    reason: 'investigate the failed nightly export job',
    ticket: null,
    rule: 'developers-prod',
    status: 'pending',
    breakGlass: false,
    extendsGrantId: null,
    approvalsRequired: 1,
    approvers: { users: [], groups: ['approvers'] },
    approvals: [],
    createdAt: '2030-01-01T10:00:00.000Z',
    expiresAt: '2030-01-01T11:00:00.000Z',
    decidedAt: null,
    decidedBy: null,
    decisionReason: null,
    grantId: null,
    ...over,
  };
}

function grant(over: Partial<GrantView> = {}): GrantView {
  return {
    id: '22222222-2222-4222-8222-222222222222',
    requestId: '11111111-1111-4111-8111-111111111111',
    holder: 'alice',
    targetId: 'orders-db',
    level: 'read',
    createdAt: '2030-01-01T10:00:00.000Z',
    expiresAt: '2030-01-01T12:00:00.000Z',
    status: 'active',
    reviewRequired: false,
    revokedAt: null,
    revokedBy: null,
    revokeReason: null,
    revocation: 'none',
    ...over,
  };
}

function review(over: Partial<ReviewView> = {}): ReviewView {
  return {
    id: '33333333-3333-4333-8333-333333333333',
    kind: 'sql',
    requester: 'alice',
    targetId: 'orders-db',
    grantId: '22222222-2222-4222-8222-222222222222',
    sessionId: '44444444-4444-4444-8444-444444444444',
    text: "UPDATE users SET password_hash = 'secret-value' WHERE id = 1",
    sha256: 'ab'.repeat(32),
    rule: 'review-writes',
    message: 'writes to users need a second pair of eyes',
    details: {},
    status: 'pending',
    approvers: { users: [], groups: ['approvers'] },
    createdAt: '2030-01-01T10:00:00.000Z',
    expiresAt: '2030-01-01T10:15:00.000Z',
    decidedBy: null,
    decisionReason: null,
    decidedAt: null,
    ...over,
  };
}

const msg = (n: Notification, id: string = crypto.randomUUID()): ServerMessage => ({
  type: 'notification',
  id,
  at: '2030-01-01T10:00:00.000Z',
  notification: n,
});

describe('gateway notification → OS notification', () => {
  it('request.pending: approvers see who wants what, for how long and why; a click opens the inbox', () => {
    const n = toOsNotification({ event: 'request.pending', request: request() }, bob);
    expect(n).toEqual({
      title: 'Access request from alice',
      body: 'read on orders-db for 2 h: investigate the failed nightly export job',
      path: '/inbox',
      urgency: 'normal',
      tag: 'request:11111111-1111-4111-8111-111111111111',
    });
    // The requester is not notified about their own request.
    expect(toOsNotification({ event: 'request.pending', request: request() }, alice)).toBeNull();
  });

  it('request.decided: the requester hears approved (with the end time) or denied (with the reason)', () => {
    const approved = toOsNotification(
      {
        event: 'request.decided',
        request: request({ status: 'approved', decidedBy: 'bob' }),
        grant: grant(),
      },
      alice,
    );
    expect(approved?.title).toBe('Access granted: orders-db');
    expect(approved?.body).toMatch(/^read access approved by bob until \d\d:\d\d\.$/);
    expect(approved?.path).toBe('/access');

    const denied = toOsNotification(
      {
        event: 'request.decided',
        request: request({
          status: 'denied',
          decidedBy: 'bob',
          decisionReason: 'use the staging copy please',
        }),
      },
      alice,
    );
    expect(denied).toMatchObject({
      title: 'Access denied: orders-db',
      body: 'Your read request was denied by bob: use the staging copy please',
    });
    // Other approvers: no popup (their badge changes, see inboxEffect); cancellations: the requester did it.
    expect(
      toOsNotification({ event: 'request.decided', request: request({ status: 'approved' }) }, bob),
    ).toBeNull();
    expect(
      toOsNotification({ event: 'request.decided', request: request({ status: 'cancelled' }) }, alice),
    ).toBeNull();
  });

  it('break-glass is critical and goes to every approver', () => {
    const n = toOsNotification(
      {
        event: 'grant.break_glass',
        request: request({ breakGlass: true, reason: 'prod is down, paging' }),
        grant: grant(),
      },
      bob,
    );
    expect(n).toMatchObject({
      title: 'Break-glass: alice on orders-db',
      urgency: 'critical',
      path: '/inbox',
    });
    expect(n?.body).toContain('without approval: prod is down, paging. Review required.');
  });

  it('grant.expiring and grant.revoked reach only the holder', () => {
    expect(
      toOsNotification({ event: 'grant.expiring', grant: grant(), secondsLeft: 300 }, alice),
    ).toMatchObject({
      title: 'Access ends in 5 min: orders-db',
      path: '/access',
    });
    expect(toOsNotification({ event: 'grant.expiring', grant: grant(), secondsLeft: 300 }, bob)).toBeNull();
    const revoked = toOsNotification(
      {
        event: 'grant.revoked',
        grant: grant({ revokedBy: 'carol', status: 'revoked' }),
        reason: 'incident closed',
      },
      alice,
    );
    expect(revoked).toMatchObject({
      title: 'Access revoked: orders-db',
      body: 'Your read access was revoked by carol: incident closed',
      urgency: 'critical',
    });
  });

  it('review.pending names the rule and its message but never the statement text (lock screens)', () => {
    const n = toOsNotification({ event: 'review.pending', review: review() }, bob);
    expect(n?.title).toBe('Review needed: SQL statement on orders-db');
    expect(n?.body).toContain('review-writes');
    expect(n?.body).toContain('writes to users need a second pair of eyes');
    expect(JSON.stringify(n)).not.toContain('secret-value');
    expect(JSON.stringify(n)).not.toContain('UPDATE');
    expect(toOsNotification({ event: 'review.pending', review: review() }, alice)).toBeNull();
    const decided = toOsNotification(
      { event: 'review.decided', review: review({ status: 'approved', decidedBy: 'bob' }) },
      alice,
    );
    expect(decided?.title).toBe('Your statement was approved: orders-db');
  });

  it('request.expired tells the requester', () => {
    expect(
      toOsNotification({ event: 'request.expired', request: request({ status: 'expired' }) }, alice)?.title,
    ).toBe('Request expired: orders-db');
  });

  it('every notification path is a valid in-app path', () => {
    const all: Notification[] = [
      { event: 'request.pending', request: request() },
      { event: 'request.decided', request: request({ status: 'approved' }), grant: grant() },
      { event: 'request.decided', request: request({ status: 'denied' }) },
      { event: 'request.expired', request: request() },
      { event: 'grant.break_glass', request: request(), grant: grant() },
      { event: 'grant.expiring', grant: grant(), secondsLeft: 60 },
      { event: 'grant.revoked', grant: grant(), reason: 'done' },
      { event: 'review.pending', review: review() },
      { event: 'review.decided', review: review({ status: 'denied' }) },
    ];
    for (const n of all) {
      for (const me of [alice, bob]) {
        const os = toOsNotification(n, me);
        if (os) expect(AppPath.safeParse(os.path).success, `${n.event} ${os.path}`).toBe(true);
      }
    }
  });
});

describe('user text in notifications', () => {
  it('strips controls and bidi overrides, collapses whitespace, clips long text', () => {
    expect(plainText('a\u0000b\n\tc\u202Ed\u200Be', 100)).toBe('a b c d e');
    const long = plainText('x'.repeat(500), 50);
    expect(long).toHaveLength(50);
    expect(long.endsWith('…')).toBe(true);
    const n = toOsNotification(
      {
        event: 'request.pending',
        request: request({ reason: `need access\u202Etxt.exe ${'please '.repeat(100)}` }),
      },
      bob,
    );
    expect(n?.body.length).toBeLessThanOrEqual(224);
    expect(n?.body).not.toContain('\u202E');
  });

  it('escapes markup for Linux notification servers', () => {
    expect(escapeNotificationMarkup('<b>bold</b> & <a href="x">link</a>')).toBe(
      '&lt;b&gt;bold&lt;/b&gt; &amp; &lt;a href="x"&gt;link&lt;/a&gt;',
    );
  });

  it('formats durations for people', () => {
    expect([30, 60, 300, 3600, 5400, 86_400 * 3, 86_400 * 3 + 7200].map(humanDuration)).toEqual([
      '30 s',
      '1 min',
      '5 min',
      '1 h',
      '1 h 30 min',
      '3 d',
      '3 d 2 h',
    ]);
  });
});

describe('inbox badge', () => {
  it('counts what waits for this user: pending requests and reviews of others', () => {
    expect(inboxEffect({ event: 'request.pending', request: request() }, bob)).toEqual({
      add: 'request:11111111-1111-4111-8111-111111111111',
    });
    expect(inboxEffect({ event: 'request.pending', request: request() }, alice)).toEqual({});
    expect(inboxEffect({ event: 'request.decided', request: request() }, bob)).toEqual({
      remove: 'request:11111111-1111-4111-8111-111111111111',
    });
    expect(inboxEffect({ event: 'review.pending', review: review() }, bob)).toEqual({
      add: 'review:33333333-3333-4333-8333-333333333333',
    });
    expect(inboxEffect({ event: 'grant.expiring', grant: grant(), secondsLeft: 1 }, bob)).toEqual({});
  });

  it('the centre shows, badges, de-duplicates replays, and resyncs from the gateway', async () => {
    const shown: OsNotification[] = [];
    const badges: number[] = [];
    let me: { username: string } | undefined = bob;
    const center = new NotificationCenter({
      me: () => me,
      show: (n) => shown.push(n),
      badge: (c) => badges.push(c),
      fetchInbox: async () => ({ requestIds: ['r1', 'r2'], reviewIds: ['v1'] }),
    });
    const m1 = msg({ event: 'request.pending', request: request({ id: 'a' }) }, 'm1');
    center.handle(m1);
    center.handle(m1); // replayed after a reconnect
    center.handle(msg({ event: 'review.pending', review: review({ id: 'b' }) }));
    expect(shown.map((s) => s.title)).toEqual([
      'Access request from alice',
      'Review needed: SQL statement on orders-db',
    ]);
    expect(center.count).toBe(2);
    center.handle(msg({ event: 'request.decided', request: request({ id: 'a', status: 'approved' }) }));
    expect(center.count).toBe(1);
    center.handle({ type: 'pong', id: 'x' });
    expect(await center.resync()).toBe(3);
    expect(badges).toEqual([1, 2, 1, 3]);
    center.clear();
    expect(badges.at(-1)).toBe(0);
    me = undefined; // signed out: nothing is shown or counted
    center.handle(msg({ event: 'request.pending', request: request({ id: 'c' }) }));
    expect(center.count).toBe(0);
  });

  it('with the console open the app leaves OS notifications to it, but keeps the badge', () => {
    const shown: OsNotification[] = [];
    const badges: number[] = [];
    const center = new NotificationCenter({
      me: () => bob,
      show: (n) => shown.push(n),
      shouldShow: () => false,
      badge: (c) => badges.push(c),
    });
    expect(center.handle(msg({ event: 'request.pending', request: request() }))).toBeNull();
    expect(shown).toEqual([]);
    expect(badges).toEqual([1]);
  });
});
