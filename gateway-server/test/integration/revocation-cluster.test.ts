// Two gateway instances on one PostgreSQL store (the store and the SQL target are the same
// embedded PostgreSQL): a grant revoked on one closes the sessions held on the other, right away
// (NOTIFY at commit, revocation-relay.ts), and the other records its own receipt. The fallback
// sweep closes sessions of grants that ended while no notice arrived.
import { randomBytes } from 'node:crypto';
import type { SqlServerMessage } from '@sallyport/protocol';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type RunningPostgres, startPostgres } from '../../src/devstack';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { adminClient, postgresTarget } from '../rig/postgres';
import { registerSecret } from '../rig/transcript';

let pgServer: RunningPostgres;
let a: TestGateway;
let b: TestGateway;

const REASON = 'checking the cluster revocation path';

beforeAll(async () => {
  pgServer = await startPostgres({ seedDemo: true });
  registerSecret(pgServer.password);
  const admin = await adminClient(pgServer);
  await admin.query('create database sallyport_cluster_store');
  await admin.end();
  const url = `postgres://${pgServer.user}:${encodeURIComponent(pgServer.password)}@${pgServer.host}:${pgServer.port}/sallyport_cluster_store`;
  const masterKey = randomBytes(32).toString('base64');
  const config = {
    database: { url },
    targets: [postgresTarget(pgServer, { labels: { env: 'dev' } })],
    access: {
      rules: [
        {
          name: 'developers-read',
          requesters: { groups: ['developers'] },
          targets: { ids: ['demo'] },
          levels: ['read' as const],
          maxDuration: '2h',
          approval: 'auto' as const,
        },
      ],
    },
  };
  a = await startTestGateway({ config, masterKey });
  b = await startTestGateway({ config, masterKey });
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await pgServer?.stop();
});

/** A SQL session on gateway `t` under `grantId`; resolves once it is ready. */
async function openSql(t: TestGateway, token: string, grantId: string) {
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/sql`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const frames: SqlServerMessage[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(String(d)) as SqlServerMessage));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('open', () => ws.send(JSON.stringify({ type: 'open', targetId: 'demo', grantId })));
  await expect.poll(() => frames.find((f) => f.type === 'ready' || f.type === 'error')).toBeDefined();
  expect(frames[0]).toMatchObject({ type: 'ready' });
  return { ws, frames, closed };
}

async function grant(t: TestGateway, token: string): Promise<string> {
  const out = await t
    .client(token)
    .requestAccess({ targetId: 'demo', level: 'read', duration: '1h', reason: REASON });
  if (out.outcome !== 'granted') throw new Error(`expected an automatic grant, got ${out.outcome}`);
  return out.grant.id;
}

describe('revocation across gateway instances sharing a store', () => {
  it('ignores notices that do not match the store: malformed, or naming a grant that is still active', async () => {
    const tokenB = await b.token('alice');
    const grantId = await grant(b, tokenB);
    const s = await openSql(b, tokenB, grantId);
    // Anyone who can connect to the store can NOTIFY: nothing of this may close the session or
    // stop a gateway.
    for (const payload of [
      'null',
      'not json',
      '{"grantId": 42}',
      JSON.stringify({ grantId, instance: 'forged' }),
    ]) {
      await sql`select pg_notify('sallyport_grant_revoked', ${payload})`.execute(a.gw.store.db);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(s.frames.some((f) => f.type === 'closed')).toBe(false);
    expect(b.gw.sessions.count(grantId)).toBe(1);
    s.ws.send(JSON.stringify({ type: 'run', id: 'still', sql: 'select 1' }));
    await expect.poll(() => s.frames.find((f) => f.type === 'complete')).toMatchObject({ id: 'still' });
    expect(b.logs.some((l) => l.msg === 'ignored a malformed revocation notice')).toBe(true);
    s.ws.close();
  });

  it('closes the session held on instance B when instance A revokes the grant, with B’s own receipt', async () => {
    const [tokenA, tokenB] = await Promise.all([a.token('alice'), b.token('alice')]);
    const grantId = await grant(a, tokenA);
    const s = await openSql(b, tokenB, grantId);
    expect(b.gw.sessions.count(grantId)).toBe(1);
    expect(a.gw.sessions.count(grantId)).toBe(0);

    const t0 = performance.now();
    let closedAfterMs = -1;
    s.ws.on('message', (d) => {
      if (closedAfterMs < 0 && String(d).includes('"type":"closed"')) closedAfterMs = performance.now() - t0;
    });
    await a.client(tokenA).revoke(grantId, 'done with the investigation');
    const revokedAfterMs = performance.now() - t0;
    // Well within the fallback sweep's 10 s: the notice arrives at commit.
    await expect
      .poll(() => s.frames.find((f) => f.type === 'closed'), { timeout: 5000 })
      .toMatchObject({
        type: 'closed',
        code: 'grant_ended',
        reason: 'Your access grant was revoked (done with the investigation); the session is closed.',
      });
    expect(await s.closed).toBeGreaterThanOrEqual(4000);
    console.log(
      `revoke on A answered after ${revokedAfterMs.toFixed(1)} ms; the session on B was told after ${closedAfterMs.toFixed(1)} ms`,
    );
    const receipts = async () =>
      (await a.gw.ledger.list({ kind: 'revocation.*', limit: 10_000 })).filter(
        (e) => e.data.grantId === grantId,
      );
    await expect
      .poll(async () => (await receipts()).map((e) => [e.kind, e.data.sessionsClosed]))
      .toEqual([
        ['revocation.completed', 0],
        ['revocation.sessions_closed', 1],
      ]);
    const remote = (await receipts())[1]!;
    expect(remote.data).toMatchObject({ instance: b.gw.instanceId, via: 'notify' });
    expect(remote.data.instance).not.toBe(a.gw.instanceId);
    expect(await a.gw.ledger.verify()).toMatchObject({ ok: true });
  });

  it('closes, on the next sweep, a session whose grant ended without a notice', async () => {
    const tokenB = await b.token('alice');
    const grantId = await grant(b, tokenB);
    const s = await openSql(b, tokenB, grantId);
    // Ended behind the gateways' back: no NOTIFY, as when a notice is lost with a connection.
    await a.gw.store.db
      .updateTable('grants')
      .set({ status: 'revoked', revoke_reason: 'expired', revoked_at: new Date(Date.now() - 60_000) })
      .where('id', '=', grantId)
      .execute();
    expect(s.frames.some((f) => f.type === 'closed')).toBe(false);
    expect(await b.gw.revocationRelay?.sweep()).toBe(1);
    await expect
      .poll(() => s.frames.find((f) => f.type === 'closed'))
      .toMatchObject({
        code: 'grant_ended',
        reason: 'Your access grant has expired; the session is closed.',
      });
    const receipt = (await b.gw.ledger.list({ kind: 'revocation.sessions_closed', limit: 10_000 })).find(
      (e) => e.data.grantId === grantId,
    );
    expect(receipt?.data).toMatchObject({ sessionsClosed: 1, via: 'sweep', instance: b.gw.instanceId });
  });
});
