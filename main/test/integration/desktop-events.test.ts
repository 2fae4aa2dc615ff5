// The main process's event channel and notification centre against a real gateway:
// alice asks for production access that needs an approver; bob's desktop gets the OS
// notification and the badge; bob approves; alice's desktop hears it. Tokens come from
// the real development provider (the rig signs in through its login form).

import { startTestGateway, type TestGateway } from '@sallyport/gateway-server/rig';
import type { TargetInput } from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AppPath } from '../../src/common/ipc-contract';
import {
  createGatewayEvents,
  type EventsState,
  type GatewayEvents,
  type SocketLike,
} from '../../src/node/gateway-events';
import { NotificationCenter, type OsNotification } from '../../src/node/notifications';

const TARGETS: TargetInput[] = [
  {
    id: 'orders-db',
    kind: 'postgres',
    name: 'Orders database',
    host: 'orders.db.internal',
    port: 5432,
    user: 'app',
    database: 'orders',
    tls: 'disable',
    labels: { env: 'prod' },
  },
];

const ACCESS = {
  rules: [
    {
      name: 'developers-prod',
      requesters: { groups: ['developers'] },
      targets: { labels: { env: 'prod' } },
      levels: ['read' as const],
      maxDuration: '2h',
      approval: { approvers: { groups: ['approvers'] } },
    },
  ],
};

const socket = (url: string) => new WebSocket(url) as unknown as SocketLike;

let gw: TestGateway;
const running: GatewayEvents[] = [];

beforeAll(async () => {
  gw = await startTestGateway({ config: { targets: TARGETS, access: ACCESS } });
});

afterAll(async () => {
  for (const e of running) e.stop();
  await gw?.stop();
});

function desktopFor(username: 'alice' | 'bob', token: string) {
  const shown: OsNotification[] = [];
  const badges: number[] = [];
  const states: EventsState[] = [];
  const api = gw.client(token);
  const center = new NotificationCenter({
    me: () => ({ username }),
    show: (n) => shown.push(n),
    badge: (c) => badges.push(c),
    fetchInbox: async () => {
      const [requests, reviews] = await Promise.all([
        api.requests({ scope: 'inbox', status: 'pending' }),
        api.reviews({ scope: 'inbox', status: 'pending' }),
      ]);
      return { requestIds: requests.map((r) => r.id), reviewIds: reviews.map((r) => r.id) };
    },
  });
  const events = createGatewayEvents({
    gatewayUrl: gw.url,
    token: async () => token,
    socket,
    onMessage: (m) => center.handle(m),
    onState: (s) => states.push(s),
    minDelayMs: 100,
  });
  running.push(events);
  events.start();
  return { shown, badges, states, center, events, api };
}

describe('desktop notifications from the gateway event channel', () => {
  it('approver gets the request as an OS notification and a badge; the requester hears the decision', async () => {
    const [aliceToken, bobToken] = await Promise.all([gw.token('alice'), gw.token('bob')]);
    const alice = desktopFor('alice', aliceToken);
    const bob = desktopFor('bob', bobToken);
    await expect.poll(() => [alice.events.state, bob.events.state]).toEqual(['open', 'open']);

    const outcome = await alice.api.requestAccess({
      targetId: 'orders-db',
      level: 'read',
      duration: '1h',
      reason: 'investigate the failed nightly export',
    });
    expect(outcome.outcome).toBe('pending');
    const id = outcome.request.id;

    await expect.poll(() => bob.shown.length).toBe(1);
    expect(bob.shown[0]).toEqual({
      title: 'Access request from alice',
      body: 'read on orders-db for 1 h: investigate the failed nightly export',
      path: '/inbox',
      urgency: 'normal',
      tag: `request:${id}`,
    });
    expect(AppPath.safeParse(bob.shown[0]!.path).success).toBe(true);
    expect(bob.center.count).toBe(1);
    expect(await bob.center.resync()).toBe(1); // the gateway agrees
    expect(alice.shown).toEqual([]); // nobody is notified of their own request
    expect(alice.center.count).toBe(0);

    await bob.api.approve(id, 'looks fine');
    await expect.poll(() => alice.shown.length).toBe(1);
    expect(alice.shown[0]).toMatchObject({ title: 'Access granted: orders-db', path: '/access' });
    expect(alice.shown[0]!.body).toMatch(/^read access approved by bob until \d\d:\d\d\.$/);
    expect(await bob.center.resync()).toBe(0);
    expect(bob.badges.at(-1)).toBe(0);
  });

  it('a refused token is reported as unauthorized and retried, not hammered', async () => {
    let calls = 0;
    const states: Array<[EventsState, string | undefined]> = [];
    const events = createGatewayEvents({
      gatewayUrl: gw.url,
      token: async () => {
        calls++;
        return 'not-a-valid-token';
      },
      socket,
      onMessage: () => {},
      onState: (s, d) => states.push([s, d]),
      minDelayMs: 300,
    });
    running.push(events);
    events.start();
    await expect.poll(() => states.some(([s]) => s === 'unauthorized'), { timeout: 10_000 }).toBe(true);
    await new Promise((r) => setTimeout(r, 1_000));
    events.stop();
    // 300 ms, 600 ms, … backoff: a handful of attempts in a second, not hundreds.
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(calls).toBeLessThanOrEqual(4);
    expect(events.state).toBe('idle');
  });

  it('a signed-out app does not connect at all', async () => {
    const states: EventsState[] = [];
    const events = createGatewayEvents({
      gatewayUrl: gw.url,
      token: async () => undefined,
      socket: () => {
        throw new Error('must not connect');
      },
      onMessage: () => {},
      onState: (s) => states.push(s),
    });
    events.start();
    await expect.poll(() => states).toEqual(['unauthorized']);
    events.stop();
  });
});
