// The HTTP API and event socket against a real gateway and a real identity provider.
import { createHash } from 'node:crypto';
import type { GatewayError, TargetInput } from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { recordingFetch, registerSecret } from '../rig/transcript';

let t: TestGateway;
let alice: string;
let carol: string;

const SECRET_PASSWORD = 'pw-for-api-test-Zq8Xr2mV';
const sshTarget: TargetInput = {
  id: 'api-ssh',
  kind: 'ssh',
  host: '10.0.0.5',
  port: 22,
  user: 'deploy',
  hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
  labels: { env: 'staging' },
  credential: { password: SECRET_PASSWORD },
};

beforeAll(async () => {
  registerSecret(SECRET_PASSWORD);
  t = await startTestGateway({
    config: {
      access: {
        rules: [
          {
            name: 'devs-prod',
            requesters: { groups: ['developers'] },
            targets: { labels: { env: 'prod' } },
            levels: ['read'],
            maxDuration: '1h',
            approval: { approvers: { groups: ['approvers'] }, count: 1 },
          },
        ],
      },
      targets: [
        {
          id: 'cfg-pg',
          kind: 'postgres',
          host: 'db.internal',
          user: 'app',
          database: 'app',
          labels: { env: 'prod' },
          credential: { password: 'cfg-secret-pw-123456' },
        },
      ],
    },
  });
  [alice, carol] = await Promise.all([t.token('alice'), t.token('carol')]);
});
afterAll(async () => {
  await t?.stop();
});

async function raw(path: string, init: RequestInit = {}) {
  const res = await recordingFetch(`${t.url}${path}`, init);
  const text = await res.text();
  const isJson = res.headers.get('content-type')?.includes('json');
  return {
    status: res.status,
    text,
    json: isJson && text ? (JSON.parse(text) as Record<string, any>) : undefined,
    headers: res.headers,
  };
}

describe('health and metrics', () => {
  it('answers liveness, readiness and Prometheus metrics', async () => {
    expect((await raw('/healthz')).json).toEqual({ status: 'ok' });
    const ready = await raw('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json?.checks).toEqual({ store: 'ok', identity: 'ok' });
    const metrics = await raw('/metrics');
    expect(metrics.text).toMatch(/^# HELP sallyport_http_requests_total/m);
    expect(metrics.text).toMatch(
      /sallyport_http_requests_total\{method="GET",route="\/readyz",status="200"\} \d+/,
    );
  });

  it('gives every response a request id, and keeps a well-formed one the client sent', async () => {
    const mine = await raw('/healthz', { headers: { 'x-request-id': 'client-req-12345' } });
    expect(mine.headers.get('x-request-id')).toBe('client-req-12345');
    const bogus = await raw('/healthz', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(bogus.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('identity', () => {
  it('/api/me maps the groups claim to roles', async () => {
    const me = await t.client(alice).me();
    expect(me).toMatchObject({
      username: 'alice',
      kind: 'user',
      groups: ['developers'],
      roles: ['developer'],
    });
    expect((await t.client(carol).me()).roles).toEqual(['admin']);
    const ci = await t.client(await t.serviceToken()).me();
    expect(ci).toMatchObject({ kind: 'service', roles: ['developer'] });
  });

  it('rejects bad tokens with 401, a reason code and an audit event', async () => {
    const cases: Array<[string | undefined, string]> = [
      [undefined, 'token_missing'],
      ['Bearer not-a-jwt', 'token_malformed'],
      ['Basic YWxpY2U6YWxpY2UtZGVtbw==', 'token_malformed'],
      [`Bearer ${alice.slice(0, -4)}AAAA`, 'token_bad_signature'],
    ];
    for (const [header, code] of cases) {
      const r = await raw('/api/me', header ? { headers: { authorization: header } } : {});
      expect(r.status, String(header)).toBe(401);
      expect(r.json?.error.code).toBe(code);
      expect(r.json?.error.message.length).toBeGreaterThan(10);
    }
    const events = await t.gw.ledger.list({ kind: 'auth.rejected' });
    const reasons = events.map((e) => e.data.reason);
    expect(reasons).toEqual(expect.arrayContaining(['missing', 'malformed', 'bad_signature']));
    expect(events.every((e) => e.data.path === '/api/me')).toBe(true);
  });
});

describe('targets', () => {
  it('lists config targets without credentials', async () => {
    const r = await raw('/api/targets', { headers: { authorization: `Bearer ${alice}` } });
    expect(r.status).toBe(200);
    const list = r.json?.targets as Array<Record<string, unknown>>;
    expect(list.map((x) => x.id)).toContain('cfg-pg');
    expect(list[0]).toMatchObject({ source: 'config', hasCredential: true, access: { state: 'none' } });
    expect(r.text).not.toContain('cfg-secret-pw');
    expect(r.text).not.toMatch(/credential_sealed|"v1\./);
  });

  it('lets an admin create, read, replace and delete a target, each audited', async () => {
    const admin = t.client(carol);
    const created = await admin.createTarget(sshTarget);
    expect(created).toMatchObject({ id: 'api-ssh', kind: 'ssh', hasCredential: true, source: 'api' });
    expect(created.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(JSON.stringify(created)).not.toContain(SECRET_PASSWORD);
    await expect(admin.createTarget(sshTarget)).rejects.toMatchObject({ status: 409, code: 'conflict' });

    // Replacing without a credential keeps the stored one: credentials are write-only.
    const { credential: _omit, ...withoutCredential } = sshTarget;
    const replaced = await admin.putTarget({ ...withoutCredential, labels: { env: 'prod' } } as TargetInput);
    expect(replaced.labels).toEqual({ env: 'prod' });
    expect(replaced.hasCredential).toBe(true);
    expect(await t.gw.targets.credential('api-ssh')).toEqual({ password: SECRET_PASSWORD });

    await admin.deleteTarget('api-ssh');
    await expect(admin.target('api-ssh')).rejects.toMatchObject({ status: 404 });
    const events = await t.gw.ledger.list({ targetId: 'api-ssh' });
    const kinds = events.map((e) => `${e.kind}:${e.actor}`);
    expect(kinds).toEqual(['target.created:carol', 'target.updated:carol', 'target.deleted:carol']);
    expect(events[0]!.data).toMatchObject({
      kind: 'ssh',
      hostKeyFingerprint: created.hostKeyFingerprint,
      credentialSet: true,
    });
    expect(events[1]!.data).toMatchObject({
      labels: { env: 'prod' },
      changed: ['labels'],
      credentialSet: false,
    });
    expect(JSON.stringify(events)).not.toContain(SECRET_PASSWORD);
  });

  it("audits a PostgreSQL target's TLS mode and CA: the bundle's SHA-256, never the bundle", async () => {
    const admin = t.client(carol);
    const ca = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ3\n-----END CERTIFICATE-----\n';
    const base = {
      id: 'api-pg',
      kind: 'postgres',
      host: 'db.internal',
      user: 'app',
      database: 'app',
    } as const;
    await admin.createTarget({ ...base, tls: 'verify-full', tlsCa: ca } as TargetInput);
    expect(await t.gw.targets.tlsCa('api-pg')).toBe(ca);
    const listed = (await t.gw.targets.list()).find((x) => x.id === 'api-pg');
    expect(listed).not.toHaveProperty('tls_ca');
    expect(listed?.tls_ca_sha256).toBe(createHash('sha256').update(ca).digest('hex'));

    await admin.putTarget({ ...base, tls: 'require' } as TargetInput);
    await admin.deleteTarget('api-pg');
    const events = await t.gw.ledger.list({ targetId: 'api-pg' });
    expect(events.map((e) => e.kind)).toEqual(['target.created', 'target.updated', 'target.deleted']);
    expect(events[0]!.data).toMatchObject({
      tls: 'verify-full',
      tlsCaSha256: createHash('sha256').update(ca).digest('hex'),
    });
    expect(events[1]!.data).toMatchObject({
      tls: 'require',
      tlsCaSha256: null,
      changed: ['tls', 'tlsCaSha256'],
    });
    expect(JSON.stringify(events)).not.toContain('MIIBszCCAVmgAwIBAgIUJ3');
  });

  it('refuses admin calls from non-admins and changes to config targets', async () => {
    await expect(t.client(alice).createTarget(sshTarget)).rejects.toMatchObject({
      status: 403,
      code: 'forbidden',
    });
    const err = await t
      .client(carol)
      .deleteTarget('cfg-pg')
      .catch((e: GatewayError) => e);
    expect(err).toMatchObject({ status: 403 });
    expect((err as GatewayError).message).toMatch(/config file/);
  });

  it('names every invalid field of a bad body, and never echoes the body back', async () => {
    const bad = await raw('/api/admin/targets', {
      method: 'POST',
      headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...sshTarget, id: 'Bad Id!', port: 'twenty-two', extra: 1 }),
    });
    expect(bad.status).toBe(400);
    const paths = (bad.json!.error.details as Array<{ path: string }>).map((d) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['id', 'port']));
    expect(bad.text).not.toContain(SECRET_PASSWORD);

    const broken = await raw('/api/admin/targets', {
      method: 'POST',
      headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/json' },
      body: `{"id":"x","credential":{"password":"${SECRET_PASSWORD}"`,
    });
    expect(broken.status).toBe(400);
    expect(broken.json?.error.code).toBe('invalid_json');
    expect(broken.text).not.toContain(SECRET_PASSWORD);
    expect(JSON.stringify(t.logs)).not.toContain(SECRET_PASSWORD);
  });
});

describe('event socket', () => {
  function open(headers?: Record<string, string>) {
    const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/ws`, headers ? { headers } : {});
    const frames: Array<Record<string, any>> = [];
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    const next = async (n: number) => {
      for (let i = 0; i < 200 && frames.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      return frames[n - 1];
    };
    return { ws, frames, closed, next, opened: new Promise((r) => ws.on('open', r)) };
  }

  it('authenticates by first frame and answers pings', async () => {
    const s = open();
    await s.opened;
    s.ws.send(JSON.stringify({ type: 'auth', token: alice }));
    expect(await s.next(1)).toMatchObject({ type: 'hello', me: { username: 'alice' } });
    s.ws.send(JSON.stringify({ type: 'ping', id: 'p1' }));
    expect(await s.next(2)).toEqual({ type: 'pong', id: 'p1' });
    s.ws.close();
  });

  it('authenticates by header', async () => {
    const s = open({ authorization: `Bearer ${carol}` });
    expect(await s.next(1)).toMatchObject({ type: 'hello', me: { username: 'carol', roles: ['admin'] } });
    s.ws.close();
  });

  it('answers malformed frames with an error naming the problem, and drops persistent offenders', async () => {
    const s = open();
    await s.opened;
    s.ws.send('{not json');
    expect(await s.next(1)).toMatchObject({
      type: 'error',
      code: 'bad_frame',
      message: 'frame is not valid JSON',
    });
    s.ws.send(JSON.stringify({ type: 'launch-missiles' }));
    expect((await s.next(2))?.message).toMatch(/does not match the protocol/);
    s.ws.send(JSON.stringify({ type: 'ping', id: 'x' }));
    expect(await s.next(3)).toMatchObject({ code: 'unauthenticated' });
    s.ws.send(Buffer.from([1, 2, 3]));
    s.ws.send('[]');
    expect(await s.closed).toBe(4400);
  });

  it('closes with 4401 on a bad token', async () => {
    const s = open();
    await s.opened;
    s.ws.send(JSON.stringify({ type: 'auth', token: 'nope' }));
    expect(await s.closed).toBe(4401);
    expect(s.frames[0]).toMatchObject({ type: 'error', code: 'token_malformed' });
  });
});
