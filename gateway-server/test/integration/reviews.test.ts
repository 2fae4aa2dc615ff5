// The review mechanism shared by SQL statements and shell commands: hold the exact text,
// notify approvers, decide, and consume an approval once, for that text only.
import type { GatewayClient } from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../src/access/service';
import { type EventSocket, openEvents } from '../rig/events';
import { type DemoUserName, startTestGateway, type TestGateway } from '../rig/gateway';

let t: TestGateway;
const api = {} as Record<DemoUserName, GatewayClient>;
const tokens = {} as Record<DemoUserName, string>;
const sockets: EventSocket[] = [];
const alice: Actor = {
  username: 'alice',
  subject: 'user-alice',
  kind: 'user',
  groups: ['developers'],
  roles: ['developer'],
};

beforeAll(async () => {
  t = await startTestGateway({
    config: {
      targets: [
        {
          id: 'db',
          kind: 'postgres',
          host: '127.0.0.1',
          port: 1,
          user: 'app',
          database: 'app',
          labels: { env: 'prod' },
        },
        {
          id: 'db-dev',
          kind: 'postgres',
          host: '127.0.0.1',
          port: 1,
          user: 'app',
          database: 'app',
          labels: { env: 'dev' },
        },
      ],
      access: {
        reviewTimeout: '2s',
        reviewers: { groups: ['admins'] },
        rules: [
          {
            name: 'prod',
            requesters: { groups: ['developers'] },
            targets: { labels: { env: 'prod' } },
            levels: ['write'],
            maxDuration: '1h',
            approval: { approvers: { users: ['dave'] } },
          },
          {
            name: 'dev',
            requesters: { groups: ['developers'] },
            targets: { labels: { env: 'dev' } },
            levels: ['write'],
            maxDuration: '1h',
            approval: 'auto',
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

async function grantFor(targetId: string) {
  const out = await api.alice.requestAccess({
    targetId,
    level: 'write',
    duration: '30m',
    reason: 'schema migration for ticket DB-12',
  });
  if (out.outcome === 'pending') await api.dave.approve(out.request.id);
  const grant = await t.gw.access.usableGrant('alice', targetId);
  if (!grant) throw new Error('no grant');
  return grant;
}

const hold = async (targetId: string, text: string) =>
  t.gw.reviews.hold({
    kind: 'sql',
    sessionId: crypto.randomUUID(),
    grant: await grantFor(targetId),
    requester: alice,
    text,
    rule: 'delete-without-where',
    message: 'needs review',
    details: { kinds: ['DeleteStmt'], relations: ['orders'] },
  });

describe('reviews', () => {
  it("holds the exact text, tells the rule's approvers, and runs it once when approved", async () => {
    const dave = await openEvents(t.url, tokens.dave);
    const aliceEvents = await openEvents(t.url, tokens.alice);
    sockets.push(dave, aliceEvents);
    const { review, outcome } = await hold('db', 'DELETE FROM orders');
    expect(review).toMatchObject({ status: 'pending', approvers: { users: ['dave'], groups: [] } });
    expect((await dave.waitFor('review.pending', (n) => n.review.id === review.id)).review.text).toBe(
      'DELETE FROM orders',
    );
    expect((await api.dave.reviews()).map((r) => r.id)).toContain(review.id);
    expect((await api.bob.reviews()).map((r) => r.id)).not.toContain(review.id);

    expect(await api.alice.approveReview(review.id).catch((e) => e.code)).toBe('self_approval');
    expect(await api.bob.approveReview(review.id).catch((e) => e.code)).toBe('not_an_approver');
    await api.dave.approveReview(review.id, 'checked the plan');
    const decided = await outcome;
    expect(decided.status).toBe('approved');
    expect(
      (await aliceEvents.waitFor('review.decided', (n) => n.review.id === review.id)).review.decidedBy,
    ).toBe('dave');

    // Bound to the text: a different statement cannot use it; the approved one runs once.
    expect(await t.gw.reviews.consume(review.id, 'DELETE FROM orders WHERE true', alice)).toBe(false);
    expect(await t.gw.reviews.consume(review.id, 'DELETE FROM orders', alice)).toBe(true);
    expect(await t.gw.reviews.consume(review.id, 'DELETE FROM orders', alice)).toBe(false);
    expect(await api.dave.approveReview(review.id).catch((e) => e.code)).toBe('review_used');
  });

  it('falls back to the configured reviewers when the grant came from an auto rule', async () => {
    const { review } = await hold('db-dev', 'TRUNCATE logs');
    expect(review.approvers).toEqual({ users: [], groups: ['admins'] });
    expect(await api.dave.approveReview(review.id).catch((e) => e.code)).toBe('not_an_approver');
    await api.carol.denyReview(review.id, 'use a retention job instead');
  });

  it('returns the reason on deny, and expires undecided reviews', async () => {
    const denied = await hold('db', 'DROP TABLE orders');
    await api.dave.denyReview(denied.review.id, 'not during business hours');
    expect(await denied.outcome).toMatchObject({
      status: 'denied',
      review: { decisionReason: 'not during business hours' },
    });
    expect(await t.gw.reviews.consume(denied.review.id, 'DROP TABLE orders', alice)).toBe(false);

    const late = await hold('db', 'UPDATE orders SET paid = true');
    expect((await late.outcome).status).toBe('expired');
    expect(await api.dave.approveReview(late.review.id).catch((e) => e.code)).toBe('review_expired');
  });

  it('records every step in the ledger', async () => {
    const kinds = (await t.gw.ledger.list({ kind: 'review.*', limit: 1000 })).map((e) => e.kind);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'review.requested',
        'review.approved',
        'review.used',
        'review.denied',
        'review.expired',
      ]),
    );
    expect(await t.gw.ledger.verify()).toMatchObject({ ok: true });
  });
});
