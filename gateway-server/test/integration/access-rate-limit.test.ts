// Access writes (requests, decisions, revocations) are rate limited per user
// (config access.writesPerMinute): past the limit the API answers 429 rate_limited, other
// users are not affected, and nothing is half-written.
import type { GatewayClient } from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../rig/gateway';

let t: TestGateway;
const api = {} as Record<'alice' | 'bob', GatewayClient>;
const REASON = 'checking the nightly report for ticket OPS-77';

beforeAll(async () => {
  t = await startTestGateway({
    config: {
      targets: [
        { id: 'pg', kind: 'postgres', host: '127.0.0.1', port: 1, user: 'app', database: 'app', labels: {} },
      ],
      access: {
        writesPerMinute: 3,
        rules: [
          {
            name: 'auto',
            requesters: { groups: ['developers'] },
            targets: { ids: ['pg'] },
            levels: ['read'],
            maxDuration: '1h',
            approval: 'auto',
          },
        ],
      },
    },
  });
  api.alice = t.client(await t.token('alice'));
  api.bob = t.client(await t.token('bob'));
});

afterAll(async () => {
  await t?.stop();
});

describe('access writes per user per minute', () => {
  it('refuses the write past the configured limit with 429 rate_limited, per user', async () => {
    const ask = (who: 'alice' | 'bob') =>
      api[who].requestAccess({ targetId: 'pg', level: 'read', duration: '10m', reason: REASON });
    for (let i = 0; i < 3; i++) expect((await ask('alice')).outcome).toBe('granted');
    const grantsBefore = (await api.alice.grants()).length;
    const refused = await ask('alice').then(
      () => undefined,
      (err: unknown) => err as { status: number; code: string; message: string },
    );
    expect(refused).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(refused?.message).toMatch(/more than 3 access requests or decisions in a minute/);
    expect((await api.alice.grants()).length).toBe(grantsBefore);
    // Another user's budget is their own.
    expect((await ask('bob')).outcome).toBe('granted');
  });
});
