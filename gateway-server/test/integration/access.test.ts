// The access lifecycle end to end through the HTTP API and the event socket:
// request → decide → grant → use → revoke/expire, every step in the ledger.
import { randomUUID } from 'node:crypto';
import type { GatewayClient, GrantView } from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventSocket, openEvents } from '../rig/events';
import { type DemoUserName, startTestGateway, type TestGateway } from '../rig/gateway';

let t: TestGateway;
const tokens = {} as Record<DemoUserName, string>;
const api = {} as Record<DemoUserName, GatewayClient>;
const sockets: EventSocket[] = [];
const REASON = 'investigating ticket OPS-42 slow queries';

const pgTarget = (id: string, env: string) => ({
  id,
  kind: 'postgres' as const,
  host: '127.0.0.1',
  port: 1,
  user: 'app',
  database: 'app',
  labels: { env },
});

beforeAll(async () => {
  t = await startTestGateway({
    config: {
      targets: [
        pgTarget('pg-staging', 'staging'),
        pgTarget('pg-prod', 'prod'),
        pgTarget('pg-quick', 'quick'),
        {
          id: 'ssh-prod',
          kind: 'ssh',
          host: '127.0.0.1',
          user: 'deploy',
          hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
          labels: { env: 'prod' },
        },
      ],
      access: {
        expiryWarning: '2s',
        rules: [
          {
            name: 'staging-auto',
            requesters: { groups: ['developers'] },
            targets: { labels: { env: 'staging' } },
            levels: ['read', 'write'],
            maxDuration: '8h',
            approval: 'auto',
          },
          {
            name: 'prod-one-approver',
            requesters: { groups: ['developers'] },
            targets: { labels: { env: 'prod' } },
            levels: ['read', 'write', 'shell'],
            maxDuration: '2h',
            approval: { approvers: { groups: ['approvers'] }, count: 1 },
            breakGlass: true,
          },
          {
            name: 'prod-admin-two',
            requesters: { groups: ['developers'] },
            targets: { ids: ['pg-prod'] },
            levels: ['admin'],
            maxDuration: '1h',
            approval: { approvers: { groups: ['approvers'] }, count: 2 },
            ticketRequired: true,
          },
          {
            name: 'quick-expiry',
            requesters: { users: ['alice'] },
            targets: { ids: ['pg-quick'] },
            levels: ['read'],
            maxDuration: '1h',
            approval: { approvers: { users: ['bob'] } },
            pendingTimeout: '2s',
          },
        ],
      },
    },
  });
  for (const u of ['alice', 'bob', 'carol', 'dave'] as const) {
    tokens[u] = await t.token(u);
    api[u] = t.client(tokens[u]);
  }
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await t?.stop();
});

const events = async (u: DemoUserName) => {
  const s = await openEvents(t.url, tokens[u]);
  sockets.push(s);
  return s;
};
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('expected a refusal'),
    (e: { status: number; code: string; message: string }) => e,
  );

describe('requests and decisions', () => {
  it('grants at once where a rule says auto, and the target shows the grant', async () => {
    const out = await api.alice.requestAccess({
      targetId: 'pg-staging',
      level: 'read',
      duration: '2h',
      reason: REASON,
    });
    expect(out.outcome).toBe('granted');
    if (out.outcome !== 'granted') return;
    expect(out.request).toMatchObject({ status: 'approved', rule: 'staging-auto', decidedBy: 'policy' });
    const ms = new Date(out.grant.expiresAt).getTime() - Date.now();
    expect(ms).toBeGreaterThan(7100_000);
    expect(ms).toBeLessThanOrEqual(7200_000);
    const target = await api.alice.target('pg-staging');
    expect(target.access).toMatchObject({ state: 'active', grantId: out.grant.id });
  });

  it('holds a request for approval, pushes it to approvers, and the requester hears the decision', async () => {
    const [bobEvents, daveEvents, aliceEvents, carolEvents] = await Promise.all([
      events('bob'),
      events('dave'),
      events('alice'),
      events('carol'),
    ]);
    const out = await api.alice.requestAccess({
      targetId: 'pg-prod',
      level: 'read',
      duration: '30m',
      reason: REASON,
      ticket: 'OPS-42',
    });
    expect(out.outcome).toBe('pending');
    expect(out.request.approvers).toEqual({ users: [], groups: ['approvers'] });
    const pushed = await bobEvents.waitFor('request.pending', (n) => n.request.id === out.request.id);
    expect(pushed.request).toMatchObject({ requester: 'alice', targetId: 'pg-prod', reason: REASON });
    await daveEvents.waitFor('request.pending', (n) => n.request.id === out.request.id);
    expect(carolEvents.notifications().some((n) => n.event === 'request.pending')).toBe(false);
    expect((await api.bob.requests({ scope: 'inbox', status: 'pending' })).map((r) => r.id)).toContain(
      out.request.id,
    );
    expect((await api.alice.target('pg-prod')).access).toMatchObject({
      state: 'pending',
      requestId: out.request.id,
    });

    const approved = await api.bob.approve(out.request.id, 'looks fine');
    expect(approved.grant).toBeDefined();
    const decided = await aliceEvents.waitFor('request.decided', (n) => n.request.id === out.request.id);
    expect(decided.grant?.id).toBe(approved.grant?.id);
    expect(decided.request).toMatchObject({ status: 'approved', decidedBy: 'bob' });
  });

  it('never lets a requester approve their own request, nor a non-approver', async () => {
    const out = await api.bob.requestAccess({
      targetId: 'ssh-prod',
      level: 'shell',
      duration: '1h',
      reason: REASON,
    });
    expect(out.outcome).toBe('pending');
    expect(await refusal(api.bob.approve(out.request.id))).toMatchObject({
      status: 403,
      code: 'self_approval',
    });
    expect(await refusal(api.carol.approve(out.request.id))).toMatchObject({
      status: 403,
      code: 'not_an_approver',
    });
    expect(await refusal(api.alice.approve(out.request.id))).toMatchObject({
      status: 403,
      code: 'not_an_approver',
    });
    expect((await api.dave.approve(out.request.id)).grant?.holder).toBe('bob');
  });

  it('counts k-of-n approvals by distinct people, and a replayed approval changes nothing', async () => {
    expect(
      await refusal(
        api.alice.requestAccess({ targetId: 'pg-prod', level: 'admin', duration: '30m', reason: REASON }),
      ),
    ).toMatchObject({
      status: 403,
      code: 'ticket_required',
    });
    const out = await api.alice.requestAccess({
      targetId: 'pg-prod',
      level: 'admin',
      duration: '30m',
      reason: REASON,
      ticket: 'CHG-7',
    });
    expect(out.request.approvalsRequired).toBe(2);
    const first = await api.bob.approve(out.request.id);
    expect(first.grant).toBeUndefined();
    expect(first.request.status).toBe('pending');
    expect(await refusal(api.bob.approve(out.request.id))).toMatchObject({
      status: 409,
      code: 'already_approved',
    });
    const second = await api.dave.approve(out.request.id);
    expect(second.request.status).toBe('approved');
    expect(second.request.approvals.map((a) => a.approver).sort()).toEqual(['bob', 'dave']);
    expect(await refusal(api.bob.approve(out.request.id))).toMatchObject({
      status: 409,
      code: 'request_approved',
    });
  });

  it('mints exactly one grant when approvals race', async () => {
    for (let round = 0; round < 3; round++) {
      const out = await api.alice.requestAccess({
        targetId: 'pg-prod',
        level: 'write',
        duration: '10m',
        reason: REASON,
      });
      const results = await Promise.allSettled([
        api.bob.approve(out.request.id),
        api.dave.approve(out.request.id),
        api.bob.approve(out.request.id),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled' && r.value.grant)).toHaveLength(1);
      const grants = await t.gw.store.db
        .selectFrom('grants')
        .select('id')
        .where('request_id', '=', out.request.id)
        .execute();
      expect(grants).toHaveLength(1);
    }
  });

  it('requires a reason to deny, tells the requester, and a denied request cannot be approved', async () => {
    const aliceEvents = await events('alice');
    const out = await api.alice.requestAccess({
      targetId: 'pg-prod',
      level: 'read',
      duration: '10m',
      reason: REASON,
    });
    expect(await refusal(api.bob.deny(out.request.id, ''))).toMatchObject({ status: 400 });
    const denied = await api.bob.deny(out.request.id, 'not during the freeze window');
    expect(denied).toMatchObject({ status: 'denied', decisionReason: 'not during the freeze window' });
    const n = await aliceEvents.waitFor('request.decided', (x) => x.request.id === out.request.id);
    expect(n.request.status).toBe('denied');
    expect(n.grant).toBeUndefined();
    expect(await refusal(api.dave.approve(out.request.id))).toMatchObject({
      status: 409,
      code: 'request_denied',
    });
  });

  it('refuses to approve a cancelled or expired request', async () => {
    const c = await api.alice.requestAccess({
      targetId: 'pg-prod',
      level: 'read',
      duration: '10m',
      reason: REASON,
    });
    await api.alice.cancel(c.request.id);
    expect(await refusal(api.bob.approve(c.request.id))).toMatchObject({
      status: 409,
      code: 'request_cancelled',
    });

    const aliceEvents = await events('alice');
    const e = await api.alice.requestAccess({
      targetId: 'pg-quick',
      level: 'read',
      duration: '10m',
      reason: REASON,
    });
    expect(e.outcome).toBe('pending');
    await aliceEvents.waitFor('request.expired', (n) => n.request.id === e.request.id, 10_000);
    expect((await api.alice.request(e.request.id)).status).toBe('expired');
    expect(await refusal(api.bob.approve(e.request.id))).toMatchObject({
      status: 409,
      code: 'request_expired',
    });
  });
});

describe('bad input and attacks', () => {
  it('refuses bad durations, reasons, targets, levels and requesters — each audited', async () => {
    const before = (await t.gw.ledger.list({ kind: 'access.refused', limit: 10_000 })).length;
    const base = { targetId: 'pg-staging', level: 'read' as const, reason: REASON };
    const cases: Array<[() => Promise<unknown>, number, string]> = [
      [() => api.alice.requestAccess({ ...base, duration: '9h' }), 403, 'duration_exceeds_max'],
      [() => api.alice.requestAccess({ ...base, duration: 0 }), 400, 'invalid_duration'],
      [() => api.alice.requestAccess({ ...base, duration: -60 }), 400, 'invalid_duration'],
      [() => api.alice.requestAccess({ ...base, duration: 1e12 }), 400, 'invalid_duration'],
      [() => api.alice.requestAccess({ ...base, duration: 'banana' }), 400, 'invalid_duration'],
      [() => api.alice.requestAccess({ ...base, duration: '1h', reason: '' }), 400, 'invalid_request'],
      [
        () => api.alice.requestAccess({ ...base, duration: '1h', reason: 'asdfasdfasdf' }),
        400,
        'invalid_request',
      ],
      [
        () => api.alice.requestAccess({ ...base, duration: '1h', targetId: 'no-such-db' }),
        404,
        'unknown_target',
      ],
      [() => api.alice.requestAccess({ ...base, duration: '1h', level: 'admin' }), 403, 'level_not_allowed'],
      [
        () => api.alice.requestAccess({ ...base, duration: '1h', targetId: 'ssh-prod', level: 'read' }),
        403,
        'level_not_for_kind',
      ],
      [() => api.carol.requestAccess({ ...base, duration: '1h' }), 403, 'no_rule'],
      [
        () => api.alice.requestAccess({ ...base, duration: '1h', breakGlass: true }),
        403,
        'break_glass_not_allowed',
      ],
    ];
    for (const [p, status, code] of cases) {
      // One at a time: a refusal that arrived before its turn would be an unhandled rejection.
      const e = await refusal(p());
      expect(e, code).toMatchObject({ status, code });
      expect(e.message.length).toBeGreaterThan(10);
    }
    const after = await t.gw.ledger.list({ kind: 'access.refused', limit: 10_000 });
    expect(after.length - before).toBe(cases.length);
    expect(after.at(-1)?.data).toMatchObject({ code: 'break_glass_not_allowed' });
  });

  it('answers forged request and grant ids with 404, audited', async () => {
    for (const id of ['not-a-uuid', randomUUID(), "'; drop table grants; --"]) {
      expect(await refusal(api.bob.approve(id))).toMatchObject({ status: 404, code: 'not_found' });
      expect(await refusal(api.alice.revoke(id, 'done with it'))).toMatchObject({ status: 404 });
    }
    const refused = await t.gw.ledger.list({ kind: 'access.refused', actor: 'bob', limit: 10_000 });
    expect(
      refused.filter((e) => e.data.action === 'approve' && e.data.code === 'not_found').length,
    ).toBeGreaterThanOrEqual(3);
  });

  it('will not let a revoked grant be used again', async () => {
    const out = await api.alice.requestAccess({
      targetId: 'pg-staging',
      level: 'write',
      duration: '1h',
      reason: REASON,
    });
    if (out.outcome !== 'granted') throw new Error('expected a grant');
    const alice = {
      username: 'alice',
      subject: 'user-alice',
      kind: 'user' as const,
      groups: ['developers'],
      roles: ['developer'],
    };
    await expect(t.gw.access.checkGrantForUse(alice, out.grant.id, 'pg-staging')).resolves.toMatchObject({
      id: out.grant.id,
    });
    await api.alice.revoke(out.grant.id, 'finished early');
    await expect(t.gw.access.checkGrantForUse(alice, out.grant.id, 'pg-staging')).rejects.toMatchObject({
      code: 'grant_revoked',
    });
    await expect(
      t.gw.access.checkGrantForUse({ ...alice, username: 'mallory' }, out.grant.id, 'pg-staging'),
    ).rejects.toMatchObject({ code: 'no_grant' });
    expect(await refusal(api.alice.revoke(out.grant.id, 'again'))).toMatchObject({
      status: 409,
      code: 'grant_revoked',
    });
    const misuse = await t.gw.ledger.list({ kind: 'access.refused', actor: 'alice', limit: 10_000 });
    expect(misuse.some((e) => e.data.code === 'grant_revoked')).toBe(true);
  });
});

describe('grants end', () => {
  const testSession = (grantId: string, closes: string[], fail = 0) => {
    let failures = fail;
    return t.gw.sessions.register(grantId, {
      id: randomUUID(),
      kind: 'test',
      username: 'alice',
      async close(reason) {
        if (failures-- > 0) throw new Error('socket stuck');
        closes.push(reason);
      },
    });
  };

  it('closes live sessions on early revoke and records how many closed', async () => {
    const out = await api.alice.requestAccess({
      targetId: 'pg-staging',
      level: 'read',
      duration: '1h',
      reason: REASON,
    });
    if (out.outcome !== 'granted') throw new Error('expected a grant');
    const closes: string[] = [];
    testSession(out.grant.id, closes);
    testSession(out.grant.id, closes);
    expect(await refusal(api.bob.revoke(out.grant.id, 'not yours'))).toMatchObject({ status: 403 });
    const revoked = await api.alice.revoke(out.grant.id, 'done');
    expect(revoked).toMatchObject({ status: 'revoked', revocation: 'completed', revokedBy: 'alice' });
    expect(closes).toEqual([
      'Your access grant was revoked (done); the session is closed.',
      'Your access grant was revoked (done); the session is closed.',
    ]);
    const [completed] = await t.gw.ledger
      .list({ kind: 'revocation.completed', limit: 10_000 })
      .then((l) => l.filter((e) => e.data.grantId === out.grant.id));
    expect(completed?.data).toMatchObject({ sessionsClosed: 2 });
  });

  it('expires grants on time: warning, sessions closed, receipt in the ledger', async () => {
    const aliceEvents = await events('alice');
    const out = await api.alice.requestAccess({
      targetId: 'pg-staging',
      level: 'read',
      duration: 3,
      reason: REASON,
    });
    if (out.outcome !== 'granted') throw new Error('expected a grant');
    const closes: string[] = [];
    testSession(out.grant.id, closes);
    const warned = await aliceEvents.waitFor('grant.expiring', (n) => n.grant.id === out.grant.id);
    expect(warned.secondsLeft).toBeLessThanOrEqual(2);
    const revokedNote = await aliceEvents.waitFor(
      'grant.revoked',
      (n) => n.grant.id === out.grant.id,
      10_000,
    );
    expect(revokedNote.reason).toBe('expired');
    expect(closes).toEqual(['Your access grant has expired; the session is closed.']);
    const trail = (await t.gw.ledger.list({ limit: 10_000 }))
      .filter((e) => e.data.grantId === out.grant.id)
      .map((e) => `${e.kind}:${e.actor}`);
    expect(trail).toEqual([
      'grant.issued:policy',
      'grant.revoked:sallyport',
      'revocation.completed:sallyport',
    ]);
    const lag =
      new Date((await t.gw.ledger.list({ kind: 'grant.revoked', limit: 10_000 })).at(-1)!.at).getTime() -
      new Date(out.grant.expiresAt).getTime();
    console.log(`expiry → revoked recorded after ${lag} ms`);
    expect(lag).toBeGreaterThanOrEqual(0);
  });

  it('retries a revocation that failed until it completes', async () => {
    const out = await api.alice.requestAccess({
      targetId: 'pg-staging',
      level: 'read',
      duration: '1h',
      reason: REASON,
    });
    if (out.outcome !== 'granted') throw new Error('expected a grant');
    const closes: string[] = [];
    testSession(out.grant.id, closes, 1);
    const first = await api.alice.revoke(out.grant.id, 'rotation');
    expect(first.revocation).toBe('failed');
    for (let i = 0; i < 50; i++) {
      const g = (await api.alice.grants({ scope: 'mine' })).find((x) => x.id === out.grant.id);
      if (g?.revocation === 'completed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const kinds = (await t.gw.ledger.list({ limit: 10_000 }))
      .filter((e) => e.data.grantId === out.grant.id)
      .map((e) => e.kind);
    expect(kinds).toEqual(['grant.issued', 'grant.revoked', 'revocation.failed', 'revocation.completed']);
    expect(closes).toHaveLength(1);
  });

  it('extends a grant through a new request linked to it', async () => {
    const out = await api.alice.requestAccess({
      targetId: 'pg-staging',
      level: 'write',
      duration: '1h',
      reason: REASON,
    });
    if (out.outcome !== 'granted') throw new Error('expected a grant');
    const ext = await api.alice.requestAccess({
      targetId: 'pg-staging',
      level: 'write',
      duration: '30m',
      reason: `${REASON}, need longer`,
      extendsGrantId: out.grant.id,
    });
    expect(ext.outcome).toBe('granted');
    if (ext.outcome !== 'granted') return;
    expect(ext.grant.id).toBe(out.grant.id);
    expect(new Date(ext.grant.expiresAt).getTime() - new Date(out.grant.expiresAt).getTime()).toBe(1800_000);
    expect(ext.request.extendsGrantId).toBe(out.grant.id);
    expect(
      await refusal(
        api.bob.requestAccess({
          targetId: 'pg-staging',
          level: 'write',
          duration: '30m',
          reason: REASON,
          extendsGrantId: out.grant.id,
        }),
      ),
    ).toMatchObject({ status: 404 });
  });

  it('break-glass grants at once, flags the grant for review, and tells every approver', async () => {
    const bobEvents = await events('bob');
    const out = await api.alice.requestAccess({
      targetId: 'ssh-prod',
      level: 'shell',
      duration: '15m',
      reason: 'production outage INC-9, pager',
      breakGlass: true,
    });
    expect(out.outcome).toBe('granted');
    if (out.outcome !== 'granted') return;
    expect(out.grant.reviewRequired).toBe(true);
    const n = await bobEvents.waitFor('grant.break_glass', (x) => x.grant.id === out.grant.id);
    expect(n.request.reason).toContain('INC-9');
    const ev = await t.gw.ledger.list({ kind: 'grant.break_glass', limit: 10_000 });
    expect(ev.at(-1)?.data).toMatchObject({ grantId: out.grant.id, reviewRequired: true });
  });

  it('break-glass is reviewed after the fact: by an approver or admin, not the holder, once, with a note', async () => {
    const out = await api.alice.requestAccess({
      targetId: 'pg-prod',
      level: 'read',
      duration: '10m',
      reason: 'production outage INC-12, checking the orders table',
      breakGlass: true,
    });
    if (out.outcome !== 'granted') return expect.unreachable('break-glass grants at once');
    const id = out.grant.id;
    const listed = async (u: DemoUserName) => (await api[u].grantsToReview()).map((x) => x.grant.id);
    expect(await listed('bob')).toContain(id);
    expect(await listed('dave')).toContain(id);
    expect(await listed('carol')).toContain(id);
    expect(await listed('alice')).not.toContain(id);
    const item = (await api.bob.grantsToReview()).find((x) => x.grant.id === id);
    expect(item?.request.reason).toContain('INC-12');

    // Refused: the holder, a bad note, a grant that was approved rather than taken, an unknown id.
    expect(await refusal(api.alice.reviewGrant(id, 'all fine, trust me'))).toMatchObject({
      status: 403,
      code: 'self_review',
    });
    expect(await refusal(api.bob.reviewGrant(id, ' '))).toMatchObject({ status: 400 });
    const approved = await api.alice.requestAccess({
      targetId: 'pg-staging',
      level: 'write',
      duration: '5m',
      reason: REASON,
    });
    if (approved.outcome !== 'granted') return expect.unreachable('staging is automatic');
    expect(await refusal(api.bob.reviewGrant(approved.grant.id, 'nothing to see'))).toMatchObject({
      status: 409,
      code: 'not_break_glass',
    });
    expect(
      await refusal(api.bob.reviewGrant('00000000-0000-4000-8000-000000000000', 'no such grant')),
    ).toMatchObject({
      status: 404,
    });
    // Someone who approves nothing (the CI service account) neither sees nor reviews it.
    const ci = t.client(await t.serviceToken());
    expect((await ci.grantsToReview()).map((x) => x.grant.id)).not.toContain(id);
    expect(await refusal(ci.reviewGrant(id, 'looks fine to me'))).toMatchObject({
      status: 403,
      code: 'not_an_approver',
    });

    const [aliceEvents, daveEvents] = await Promise.all([events('alice'), events('dave')]);
    const note = 'watched the recording: two SELECTs on orders, justified by INC-12';
    const reviewed = await api.bob.reviewGrant(id, note);
    expect(reviewed).toMatchObject({ id, reviewedBy: 'bob', reviewNote: note, reviewRequired: true });
    expect(Date.parse(reviewed.reviewedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
    // The approvers hear what was found; the holder, who reviewed it.
    expect((await daveEvents.waitFor('grant.reviewed', (n) => n.grant.id === id)).grant.reviewNote).toBe(
      note,
    );
    expect((await aliceEvents.waitFor('grant.reviewed', (n) => n.grant.id === id)).grant).toMatchObject({
      reviewedBy: 'bob',
      reviewNote: null,
    });

    // Once: the next reviewer is told who did it; nobody's list shows it any more.
    expect(await refusal(api.dave.reviewGrant(id, 'looked too'))).toMatchObject({
      status: 409,
      code: 'already_reviewed',
      message: expect.stringContaining('bob'),
    });
    expect(await listed('dave')).not.toContain(id);
    expect((await api.carol.grants({ scope: 'all' })).find((g) => g.id === id)).toMatchObject({
      reviewNote: note,
    });
    expect((await api.alice.grants()).find((g) => g.id === id)).toMatchObject({
      reviewedBy: 'bob',
      reviewNote: null,
    });
    const ledger = await t.gw.ledger.list({ kind: 'grant.reviewed', limit: 10_000 });
    expect(ledger.filter((e) => e.data.grantId === id)).toEqual([
      expect.objectContaining({
        actor: 'bob',
        subject: 'alice',
        target_id: 'pg-prod',
        data: { grantId: id, note },
      }),
    ]);
    const refused = await t.gw.ledger.list({ kind: 'access.refused', limit: 10_000 });
    expect(refused.map((e) => e.data.code)).toEqual(
      expect.arrayContaining(['self_review', 'not_break_glass', 'already_reviewed']),
    );
  });
});

describe('visibility, explain and the ledger', () => {
  it('shows each caller only the targets a rule lets them request or approve', async () => {
    const ids = async (u: DemoUserName) => (await api[u].targets()).map((x) => x.id).sort();
    expect(await ids('carol')).toEqual(['pg-prod', 'pg-quick', 'pg-staging', 'ssh-prod']);
    expect(await ids('alice')).toEqual(['pg-prod', 'pg-quick', 'pg-staging', 'ssh-prod']);
    expect(await ids('dave')).toEqual(['pg-prod', 'pg-quick', 'ssh-prod'].filter((x) => x !== 'pg-quick'));
  });

  it('explains who can reach a target, with and without approval', async () => {
    const mine = await api.alice.explain({ target: 'pg-prod' });
    expect(mine.rules.filter((r) => r.applies).map((r) => r.rule)).toEqual([
      'prod-one-approver',
      'prod-admin-two',
    ]);
    expect(mine.withoutApproval).toEqual([]);
    expect(mine.withApproval.map((r) => r.approvers)).toEqual([
      '1 of group:approvers',
      '2 of group:approvers',
    ]);
    const staging = await api.carol.explain({ target: 'pg-staging', user: 'alice' });
    expect(staging.withoutApproval).toEqual([
      { rule: 'staging-auto', users: [], groups: ['developers'], levels: ['read', 'write'] },
    ]);
    expect(await refusal(api.alice.explain({ target: 'pg-staging', user: 'bob' }))).toMatchObject({
      status: 403,
    });
  });

  it('tells one request story in order, and the chain verifies', async () => {
    const out = await api.alice.requestAccess({
      targetId: 'pg-prod',
      level: 'read',
      duration: '10m',
      reason: REASON,
    });
    const { grant } = await api.bob.approve(out.request.id);
    await api.alice.revoke((grant as GrantView).id, 'done');
    const story = (await api.carol.audit({ limit: 10_000 }))
      .filter((e) => e.requestId === out.request.id)
      .map((e) => `${e.kind}:${e.actor}`);
    expect(story).toEqual([
      'request.created:alice',
      'request.approval:bob',
      'request.approved:bob',
      'grant.issued:bob',
      'grant.revoked:alice',
      'revocation.completed:sallyport',
    ]);
    expect(await api.carol.verifyAudit()).toMatchObject({ ok: true });
    expect(await refusal(api.alice.verifyAudit())).toMatchObject({ status: 403 });
  });
});
