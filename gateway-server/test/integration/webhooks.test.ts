// Webhook delivery through the outbox, against a real gateway and a real local HTTP receiver.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Notification, RequestView } from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { GatewayConfig, type GatewayConfigInput } from '../../src/config/schema';
import { createWebhookDispatcher, type WebhookConfig } from '../../src/notify/webhooks';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { registerSecret } from '../rig/transcript';

type WireJson = Record<string, any>;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  json: WireJson;
}

interface Receiver {
  url: string;
  port: number;
  received: Received[];
  on(path: string): Received[];
  /** Status (and body) for the next request to `path`; default 200. */
  respond: Map<string, (n: number) => { status: number; body?: string }>;
  close(): Promise<void>;
}

async function startReceiver(port = 0): Promise<Receiver> {
  const received: Received[] = [];
  const respond = new Map<string, (n: number) => { status: number; body?: string }>();
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const p = req.url ?? '/';
      received.push({ path: p, headers: req.headers, raw, json: JSON.parse(raw) as WireJson });
      const n = (counts.get(p) ?? 0) + 1;
      counts.set(p, n);
      const answer = respond.get(p)?.(n) ?? { status: 200 };
      res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.body ?? 'ok');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    received,
    on: (p) => received.filter((r) => r.path === p),
    respond,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on (for now). */
async function freePort(): Promise<number> {
  const r = await startReceiver();
  await r.close();
  return r.port;
}

async function waitFor<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What a receiver does: HMAC-SHA256 over "<timestamp>.<raw body>", compared in constant time. */
function verify(secret: string, headers: IncomingHttpHeaders, raw: string): boolean {
  const ts = String(headers['x-sallyport-timestamp']);
  const sig = String(headers['x-sallyport-signature'] ?? '');
  const expected = `sha256=${createHmac('sha256', secret).update(`${ts}.${raw}`).digest('hex')}`;
  return sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected));
}

const SECRET = `whsec-${randomBytes(16).toString('hex')}`;
const REASON = 'Investigate the checkout outage in production';

const access = {
  rules: [
    {
      name: 'devs-prod',
      requesters: { groups: ['developers'] },
      targets: { labels: { env: 'prod' } },
      levels: ['read' as const],
      maxDuration: '1h',
      approval: { approvers: { groups: ['approvers'] }, count: 1 },
    },
  ],
};
const targets: GatewayConfigInput['targets'] = [
  {
    id: 'cfg-pg',
    kind: 'postgres',
    host: 'db.internal',
    user: 'app',
    database: 'app',
    labels: { env: 'prod' },
    credential: { password: 'webhook-test-pw-8Kq2' },
  },
];

const rowsOf = (t: TestGateway, webhook: string) =>
  t.gw.store.db.selectFrom('webhook_deliveries').selectAll().where('webhook', '=', webhook).execute();

const silentLog = () => {
  const errors: Array<Record<string, unknown>> = [];
  return {
    errors,
    log: {
      debug() {},
      info() {},
      warn() {},
      error(o: object) {
        errors.push(o as Record<string, unknown>);
      },
    },
  };
};

const hook = (h: Partial<WebhookConfig> & { name: string; url: string }): WebhookConfig => ({
  format: 'json',
  events: [
    'request.pending',
    'request.decided',
    'request.expired',
    'grant.break_glass',
    'grant.expiring',
    'grant.revoked',
  ],
  timeoutMs: 2000,
  ...h,
});

let rx: Receiver;
let t: TestGateway;
let alice: string;
let bob: string;
let pending: RequestView;

beforeAll(async () => {
  registerSecret(SECRET);
  rx = await startReceiver();
  t = await startTestGateway({
    config: {
      access,
      targets,
      notify: {
        webhooks: [
          { name: 'audit-json', url: `${rx.url}/json`, secret: SECRET },
          { name: 'team-chat', url: `${rx.url}/slack`, format: 'slack' },
          { name: 'pending-only', url: `${rx.url}/pending`, events: ['request.pending'] },
        ],
      },
    },
  });
  [alice, bob] = await Promise.all([t.token('alice'), t.token('bob')]);
});
afterAll(async () => {
  await t?.stop();
  await rx?.close();
});

describe('webhooks from the access lifecycle', () => {
  it('sends request.pending, signed, then request.decided when bob approves', async () => {
    const out = await t
      .client(alice)
      .requestAccess({ targetId: 'cfg-pg', level: 'read', duration: '1h', reason: REASON });
    expect(out.outcome).toBe('pending');
    pending = out.request;

    const first = await waitFor('request.pending on /json', () =>
      rx
        .on('/json')
        .find((r) => r.json.event === 'request.pending' && r.json.notification.request.id === pending.id),
    );
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.headers['x-sallyport-event']).toBe('request.pending');
    expect(first.headers['x-sallyport-delivery']).toBe(first.json.id);
    const ts = Number(first.headers['x-sallyport-timestamp']);
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(60);
    expect(first.headers['x-sallyport-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(first.json).toMatchObject({
      event: 'request.pending',
      notification: {
        event: 'request.pending',
        request: { requester: 'alice', targetId: 'cfg-pg', reason: REASON },
      },
    });
    expect(new Date(first.json.at).toISOString()).toBe(first.json.at);

    // The receiver's check: valid as sent; any change to the body, the timestamp or the secret breaks it.
    expect(verify(SECRET, first.headers, first.raw)).toBe(true);
    expect(verify(SECRET, first.headers, first.raw.replace('alice', 'mallory'))).toBe(false);
    expect(verify(SECRET, { ...first.headers, 'x-sallyport-timestamp': String(ts + 1) }, first.raw)).toBe(
      false,
    );
    expect(verify(`${SECRET}x`, first.headers, first.raw)).toBe(false);
    expect(first.raw).not.toContain(SECRET);

    await t.client(bob).approve(pending.id, 'looks fine');
    const decided = await waitFor('request.decided on /json', () =>
      rx
        .on('/json')
        .find((r) => r.json.event === 'request.decided' && r.json.notification.request.id === pending.id),
    );
    expect(decided.headers['x-sallyport-event']).toBe('request.decided');
    expect(decided.json.notification).toMatchObject({
      request: { status: 'approved', decidedBy: 'bob' },
      grant: { holder: 'alice', targetId: 'cfg-pg', level: 'read' },
    });
    expect(verify(SECRET, decided.headers, decided.raw)).toBe(true);

    // The receiver has the request before the gateway has read its answer and marked the row.
    await expect
      .poll(async () => (await rowsOf(t, 'audit-json')).map((r) => [r.event, r.status, r.attempts]), {
        timeout: 10_000,
      })
      .toEqual(
        expect.arrayContaining([
          ['request.pending', 'delivered', 1],
          ['request.decided', 'delivered', 1],
        ]),
      );
  });

  it('sends a Slack-compatible message naming who, what, why, how long and how to approve', async () => {
    const msg = await waitFor('request.pending on /slack', () =>
      rx.on('/slack').find((r) => r.headers['x-sallyport-event'] === 'request.pending'),
    );
    expect(msg.headers['x-sallyport-signature']).toBeUndefined(); // no secret configured
    const text = msg.json.text as string;
    expect(text).toContain('alice');
    expect(text).toContain('cfg-pg');
    expect(text).toContain(REASON);
    expect(text).toContain('1h');
    expect(text).toContain(`sallyport approve ${pending.id}`);
    expect(Array.isArray(msg.json.blocks)).toBe(true);
    const blocks = JSON.stringify(msg.json.blocks);
    expect(blocks).toContain(pending.id);
    expect(blocks).toContain(REASON);
    expect(blocks).toContain(`sallyport approve ${pending.id}`);

    const decided = await waitFor('request.decided on /slack', () =>
      rx.on('/slack').find((r) => r.headers['x-sallyport-event'] === 'request.decided'),
    );
    expect(decided.json.text).toMatch(/alice.*cfg-pg.*approved by bob/);
    expect(JSON.stringify(decided.json.blocks)).toMatch(/grant `[0-9a-f-]{36}`/);
  });

  it('sends only the events a webhook asks for', async () => {
    await waitFor('request.decided on /json', () =>
      rx.on('/json').some((r) => r.json.event === 'request.decided'),
    );
    await waitFor('request.pending on /pending', () => rx.on('/pending').length > 0);
    expect(rx.on('/pending').map((r) => r.headers['x-sallyport-event'])).toEqual(['request.pending']);
    expect((await rowsOf(t, 'pending-only')).map((r) => r.event)).toEqual(['request.pending']);
  });

  it('escapes user text in Slack messages so a reason cannot mention @channel or forge links', async () => {
    const reason = 'Debugging <!channel> and <https://evil.example|login here> now';
    const out = await t
      .client(alice)
      .requestAccess({ targetId: 'cfg-pg', level: 'read', duration: '30m', reason });
    const msg = await waitFor('second pending on /slack', () =>
      rx
        .on('/slack')
        .find((r) => r.raw.includes(out.request.id) && r.headers['x-sallyport-event'] === 'request.pending'),
    );
    const blocks = JSON.stringify(msg.json.blocks);
    expect(blocks).not.toContain('<!channel>');
    expect(blocks).toContain('&lt;!channel&gt;');
    expect(msg.json.text).not.toMatch(/<!channel>|<https:/);
    expect(msg.json.text).toContain('&lt;!channel&gt;');
    await t.client(alice).cancel(out.request.id);
  });
});

describe('retries and failure', () => {
  const pendingNotification = (): Notification => ({ event: 'request.pending', request: pending });

  it('retries a receiver that answers 500 twice and delivers on the third attempt', async () => {
    const body500 = 'boom '.repeat(100);
    rx.respond.set('/flaky', (n) => (n <= 2 ? { status: 500, body: body500 } : { status: 200 }));
    const { log } = silentLog();
    // Not in the gateway's config, so only this dispatcher claims its rows.
    const d = createWebhookDispatcher({
      store: t.gw.store,
      webhooks: [hook({ name: 'flaky', url: `${rx.url}/flaky` })],
      log,
      retryDelayMs: (attempt) => (attempt === 1 ? 400 : 50),
    });
    d.start();
    try {
      await d.enqueue(pendingNotification());
      const afterFirst = await waitFor('first failed attempt', async () =>
        (await rowsOf(t, 'flaky')).find((r) => r.attempts === 1),
      );
      expect(afterFirst.status).toBe('pending');
      expect(afterFirst.last_error).toBe(`HTTP 500: ${body500.slice(0, 200)}`);
      expect(new Date(afterFirst.next_attempt_at).getTime()).toBeGreaterThan(Date.now());

      const done = await waitFor('flaky delivered', async () =>
        (await rowsOf(t, 'flaky')).find((r) => r.status === 'delivered'),
      );
      expect(done.attempts).toBe(3);
      expect(done.last_error).toBeNull();
      const got = rx.on('/flaky');
      expect(got).toHaveLength(3);
      // The same delivery each time: receivers de-duplicate on it.
      expect(new Set(got.map((r) => r.headers['x-sallyport-delivery']))).toEqual(new Set([done.id]));
      expect(new Set(got.map((r) => r.raw)).size).toBe(1);
    } finally {
      await d.stop();
    }
  });

  it('keeps retrying a receiver that is down, then marks the delivery failed after maxAttempts', async () => {
    const port = await freePort();
    const { log, errors } = silentLog();
    const d = createWebhookDispatcher({
      store: t.gw.store,
      webhooks: [hook({ name: 'down', url: `http://127.0.0.1:${port}/hook` })],
      log,
      retryDelayMs: (attempt) => (attempt < 3 ? 250 : 30),
      maxAttempts: 5,
    });
    d.start();
    try {
      await d.enqueue(pendingNotification());
      const growing = await waitFor('two failed attempts', async () =>
        (await rowsOf(t, 'down')).find((r) => r.attempts === 2),
      );
      expect(growing.status).toBe('pending');
      expect(growing.last_error).toMatch(/ECONNREFUSED/);

      const failed = await waitFor('delivery failed', async () =>
        (await rowsOf(t, 'down')).find((r) => r.status === 'failed'),
      );
      expect(failed.attempts).toBe(5);
      expect(failed.last_error).toMatch(/ECONNREFUSED/);
      expect(errors).toEqual([
        expect.objectContaining({ webhook: 'down', delivery: failed.id, attempts: 5 }),
      ]);
      // Failed rows are not retried any more.
      expect(await d.deliverDue()).toBe(0);
    } finally {
      await d.stop();
    }
  });

  it('counts a slow receiver as a failed attempt (timeout)', async () => {
    const slow = createServer(() => {}); // never answers
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const port = (slow.address() as AddressInfo).port;
    const { log } = silentLog();
    const d = createWebhookDispatcher({
      store: t.gw.store,
      webhooks: [hook({ name: 'slow', url: `http://127.0.0.1:${port}/`, timeoutMs: 200 })],
      log,
      retryDelayMs: () => 60_000,
    });
    try {
      await d.enqueue(pendingNotification());
      expect(await d.deliverDue()).toBe(1);
      const [row] = await rowsOf(t, 'slow');
      expect(row).toMatchObject({ status: 'pending', attempts: 1, last_error: 'timed out after 200 ms' });
    } finally {
      await d.stop();
      slow.closeAllConnections();
      await new Promise<void>((r) => slow.close(() => r()));
    }
  });

  it('two dispatchers sharing a store send each delivery once', async () => {
    const { log } = silentLog();
    const shared = [hook({ name: 'shared', url: `${rx.url}/shared` })];
    const a = createWebhookDispatcher({ store: t.gw.store, webhooks: shared, log, batchSize: 50 });
    const b = createWebhookDispatcher({ store: t.gw.store, webhooks: shared, log, batchSize: 50 });
    for (let i = 0; i < 10; i++) await a.enqueue(pendingNotification());
    const [na, nb] = await Promise.all([a.deliverDue(), b.deliverDue()]);
    expect(na + nb).toBe(10);
    const got = rx.on('/shared');
    expect(got).toHaveLength(10);
    expect(new Set(got.map((r) => r.headers['x-sallyport-delivery'])).size).toBe(10);
    const rows = await rowsOf(t, 'shared');
    expect(rows.every((r) => r.status === 'delivered' && r.attempts === 1)).toBe(true);
  });

  it('makes enqueue throw when the store fails (nothing is silently lost)', async () => {
    const { log } = silentLog();
    const d = createWebhookDispatcher({
      // Every query of this store fails: the schema does not exist.
      store: { ...t.gw.store, db: t.gw.store.db.withSchema('no_such_schema') },
      webhooks: [hook({ name: 'broken', url: `${rx.url}/broken` })],
      log,
    });
    await expect(d.enqueue(pendingNotification())).rejects.toThrow(/no_such_schema|does not exist/);
  });
});

describe('durability', () => {
  it('delivers after a restart what was queued while the receiver was down', async () => {
    const port = await freePort();
    const root = mkdtempSync(path.join(tmpdir(), 'sallyport-webhooks-'));
    const masterKey = randomBytes(32).toString('base64');
    const config: Partial<GatewayConfigInput> = {
      access,
      targets,
      notify: {
        webhooks: [{ name: 'restart-hook', url: `http://127.0.0.1:${port}/after-restart`, secret: SECRET }],
      },
    };
    let first: TestGateway | undefined;
    let second: TestGateway | undefined;
    let back: Receiver | undefined;
    try {
      first = await startTestGateway({ dataDir: root, masterKey, config });
      const token = await first.token('alice');
      const out = await first
        .client(token)
        .requestAccess({ targetId: 'cfg-pg', level: 'read', duration: '1h', reason: REASON });
      const gw1 = first;
      const row = await waitFor('a failed attempt', async () =>
        (await rowsOf(gw1, 'restart-hook')).find((r) => r.attempts >= 1),
      );
      expect(row.status).toBe('pending');
      expect(row.last_error).toMatch(/ECONNREFUSED/);
      await first.stop();
      first = undefined;

      back = await startReceiver(port);
      second = await startTestGateway({ dataDir: root, masterKey, config });
      const gw2 = second;
      const done = await waitFor('delivered after restart', async () =>
        (await rowsOf(gw2, 'restart-hook')).find((r) => r.status === 'delivered'),
      );
      expect(done.id).toBe(row.id);
      const got = back.on('/after-restart');
      expect(got).toHaveLength(1);
      expect(got[0]!.json).toMatchObject({
        id: row.id,
        event: 'request.pending',
        notification: { request: { id: out.request.id } },
      });
      expect(verify(SECRET, got[0]!.headers, got[0]!.raw)).toBe(true);
    } finally {
      await first?.stop();
      await second?.stop();
      await back?.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('webhook configuration', () => {
  const base = { identity: { devProvider: { enabled: true } } };
  const problems = (webhooks: unknown[]) => {
    const r = GatewayConfig.safeParse({ ...base, notify: { webhooks } });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('defaults format, events and timeout, and accepts https or loopback http', () => {
    const cfg = GatewayConfig.parse({
      ...base,
      notify: {
        webhooks: [
          { name: 'chat', url: 'https://hooks.example.com/x' },
          { name: 'local', url: 'http://[::1]:9/' },
        ],
      },
    });
    expect(cfg.notify.webhooks[0]).toMatchObject({ format: 'json', timeoutMs: 5000 });
    expect(cfg.notify.webhooks[0]!.events).toContain('grant.revoked');
    expect(GatewayConfig.parse(base).notify.webhooks).toEqual([]);
  });

  it('refuses plain http off loopback, short secrets, unknown events and duplicate names', () => {
    expect(problems([{ name: 'a', url: 'http://hooks.example.com/x' }]).join()).toMatch(/https/);
    expect(problems([{ name: 'a', url: 'ftp://127.0.0.1/x' }])).not.toEqual([]);
    expect(problems([{ name: 'a', url: 'https://h.example/x', secret: 'short' }]).join()).toMatch(/secret/);
    expect(problems([{ name: 'a', url: 'https://h.example/x', events: ['request.created'] }])).not.toEqual(
      [],
    );
    expect(problems([{ name: 'Not A Slug', url: 'https://h.example/x' }]).join()).toMatch(/name/);
    expect(
      problems([
        { name: 'a', url: 'https://h.example/x' },
        { name: 'a', url: 'https://h.example/y' },
      ]),
    ).toEqual(['notify.webhooks.1.name: duplicate webhook name "a" (also notify.webhooks[0])']);
  });

  it('takes the secret from SALLYPORT_WEBHOOK_<NAME>_SECRET', () => {
    const yaml = [
      'identity: { devProvider: { enabled: true } }',
      'notify:',
      '  webhooks:',
      '    - { name: team-chat, url: "https://hooks.example.com/x", secret: from-the-file-123456 }',
    ].join('\n');
    const cfg = parseConfig(yaml, 'sallyport.yaml', {
      SALLYPORT_WEBHOOK_TEAM_CHAT_SECRET: 'from-the-environment-1234',
    });
    expect(cfg.notify.webhooks[0]!.secret).toBe('from-the-environment-1234');
    expect(parseConfig(yaml, 'sallyport.yaml', {}).notify.webhooks[0]!.secret).toBe('from-the-file-123456');
  });
});
