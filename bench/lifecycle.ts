/**
 * Access-lifecycle latency: `npx tsx bench/lifecycle.ts` (or `npm run bench:lifecycle`).
 *
 * One in-process test gateway (PGlite store), 1,000 pending requests seeded through the
 * access service, then, with the approver's and the requester's event sockets open:
 *  - request (POST /api/requests) → `request.pending` on the approver's socket;
 *  - approval (POST /api/requests/:id/approve) → `request.decided` on the requester's socket;
 *  - 200 grants expiring at one instant → sessions closed, `revocation.completed` written,
 *    holder told (`grant.revoked`), each relative to that instant;
 *  - the direct baseline of the same run: a bare `ping` → `pong` round trip on /api/ws.
 * Prints a table (with ratios to the baseline p50) and writes bench/results/lifecycle-<ts>.json.
 * No assertions.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { startTestGateway, type TestGateway } from '@sallyport/gateway-server/rig';
import {
  type ClientMessage,
  createGatewayClient,
  type GatewayClient,
  type Notification,
  type ServerMessage,
} from '@sallyport/protocol';
import WebSocket from 'ws';

const SEEDED = 1_000;
const SAMPLES = 300;
const WARMUP = 20;
const EXPIRING = 200;
const EXPIRY_LEAD_MS = 2_000;
const REASON = 'benchmark: measuring the access lifecycle';
const TARGET = 'pg-bench';

/** Wall-clock milliseconds with sub-millisecond resolution (comparable with Date.now()). */
const wallNow = () => performance.timeOrigin + performance.now();

// ---------- statistics ----------

interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) =>
    s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
  return {
    n: s.length,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: s.at(-1) ?? Number.NaN,
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

// ---------- a raw event socket that timestamps every frame on arrival ----------

interface RawSocket {
  /** Calls `fn` for every frame, with its arrival time (performance.now()). Returns an unsubscribe. */
  listen(fn: (msg: ServerMessage, at: number) => void): () => void;
  send(msg: ClientMessage): void;
  close(): void;
}

async function openSocket(gatewayUrl: string, token: string): Promise<RawSocket> {
  const ws = new WebSocket(`${gatewayUrl.replace(/^http/, 'ws')}/api/ws`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const listeners = new Set<(msg: ServerMessage, at: number) => void>();
  ws.on('message', (data) => {
    const at = performance.now();
    const msg = JSON.parse(String(data)) as ServerMessage;
    for (const fn of listeners) fn(msg, at);
  });
  await new Promise<void>((resolve, reject) => {
    const hello = (msg: ServerMessage) => {
      if (msg.type !== 'hello') return;
      listeners.delete(hello);
      resolve();
    };
    listeners.add(hello);
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`event socket closed (${code}) before hello`)));
  });
  return {
    listen(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    send: (msg) => ws.send(JSON.stringify(msg)),
    close: () => ws.close(),
  };
}

/** Arrival times of frames by key; `wait(key)` resolves with the arrival time, whether it came before or after the call. */
function arrivals(sock: RawSocket, keyOf: (msg: ServerMessage) => string | undefined) {
  const seen = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  const stop = sock.listen((msg, at) => {
    const key = keyOf(msg);
    if (key === undefined) return;
    const w = waiting.get(key);
    if (w) {
      waiting.delete(key);
      w(at);
    } else seen.set(key, at);
  });
  return {
    seen,
    wait(key: string, timeoutMs = 10_000): Promise<number> {
      const early = seen.get(key);
      if (early !== undefined) {
        seen.delete(key);
        return Promise.resolve(early);
      }
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(key);
          reject(new Error(`no frame for ${key} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(key, (at) => {
          clearTimeout(timer);
          resolve(at);
        });
      });
    },
    stop,
  };
}

const notification =
  <E extends Notification['event']>(event: E) =>
  (msg: ServerMessage): Extract<Notification, { event: E }> | undefined =>
    msg.type === 'notification' && msg.notification.event === event
      ? (msg.notification as Extract<Notification, { event: E }>)
      : undefined;

// ---------- the run ----------

async function main() {
  const started = performance.now();
  const t: TestGateway = await startTestGateway({
    config: {
      targets: [
        {
          id: TARGET,
          kind: 'postgres',
          host: '127.0.0.1',
          port: 1,
          user: 'app',
          database: 'app',
          labels: { env: 'bench' },
        },
      ],
      access: {
        // The benchmark makes hundreds of requests and decisions a minute as one user each.
        writesPerMinute: 100_000,
        rules: [
          {
            name: 'bench-approval',
            requesters: { groups: ['developers'] },
            targets: { ids: [TARGET] },
            levels: ['read'],
            maxDuration: '1h',
            approval: { approvers: { groups: ['approvers'] } },
            pendingTimeout: '1h',
          },
          {
            name: 'bench-auto',
            requesters: { groups: ['developers'] },
            targets: { ids: [TARGET] },
            levels: ['write'],
            maxDuration: '1h',
            approval: 'auto',
          },
        ],
      },
    },
  });
  const sockets: RawSocket[] = [];
  try {
    const alice = {
      username: 'alice',
      subject: 'user-alice',
      kind: 'user' as const,
      groups: ['developers'],
      roles: ['developer'],
    };
    const [aliceToken, daveToken] = [await t.token('alice'), await t.token('dave')];
    const api = (token: string): GatewayClient => createGatewayClient({ baseUrl: t.url, token: () => token });
    const aliceApi = api(aliceToken);
    const daveApi = api(daveToken);
    // Warm the caller path (token verification, user record) before anything is timed.
    await aliceApi.me();
    await daveApi.me();

    // Seed: 1,000 pending requests through the access service (audited, like any other).
    const seedStart = performance.now();
    const seeded: string[] = [];
    for (let i = 0; i < SEEDED; i++) {
      const out = await t.gw.access.request(alice, {
        targetId: TARGET,
        level: 'read',
        duration: '30m',
        reason: `${REASON} #${i}`,
      });
      seeded.push(out.request.id);
    }
    const seedMs = performance.now() - seedStart;
    log(
      `seeded ${SEEDED} pending requests in ${(seedMs / 1000).toFixed(1)} s (${(seedMs / SEEDED).toFixed(2)} ms each)`,
    );

    const approverSock = await openSocket(t.url, daveToken);
    const requesterSock = await openSocket(t.url, aliceToken);
    sockets.push(approverSock, requesterSock);

    // Baseline: bare ping → pong on the approver's socket.
    const pongs = arrivals(approverSock, (m) => (m.type === 'pong' ? m.id : undefined));
    const ping = async () => {
      const id = randomUUID();
      const t0 = performance.now();
      approverSock.send({ type: 'ping', id });
      return (await pongs.wait(id)) - t0;
    };
    for (let i = 0; i < WARMUP; i++) await ping();
    const baseline: number[] = [];
    for (let i = 0; i < SAMPLES; i++) baseline.push(await ping());
    pongs.stop();

    // Request → request.pending on the approver's socket.
    const pendingSeen = arrivals(approverSock, (m) => notification('request.pending')(m)?.request.id);
    const requestOnce = async () => {
      const t0 = performance.now();
      const out = await aliceApi.requestAccess({
        targetId: TARGET,
        level: 'read',
        duration: '30m',
        reason: REASON,
      });
      const responded = performance.now();
      const pushed = await pendingSeen.wait(out.request.id);
      return { push: pushed - t0, http: responded - t0 };
    };
    for (let i = 0; i < WARMUP; i++) await requestOnce();
    const requestPush: number[] = [];
    const requestHttp: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const r = await requestOnce();
      requestPush.push(r.push);
      requestHttp.push(r.http);
    }
    pendingSeen.stop();

    // Approval → request.decided on the requester's socket (approving seeded requests).
    const decidedSeen = arrivals(requesterSock, (m) => notification('request.decided')(m)?.request.id);
    const toApprove = [...seeded];
    const approveOnce = async () => {
      const id = toApprove.shift()!;
      const t0 = performance.now();
      await daveApi.approve(id);
      const responded = performance.now();
      const pushed = await decidedSeen.wait(id);
      return { push: pushed - t0, http: responded - t0 };
    };
    for (let i = 0; i < WARMUP; i++) await approveOnce();
    const approvePush: number[] = [];
    const approveHttp: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const r = await approveOnce();
      approvePush.push(r.push);
      approveHttp.push(r.http);
    }
    decidedSeen.stop();

    // Expiry: 200 grants expiring at one instant, one live session each.
    const grants: string[] = [];
    for (let i = 0; i < EXPIRING; i++) {
      const out = await t.gw.access.request(alice, {
        targetId: TARGET,
        level: 'write',
        duration: '1h',
        reason: `${REASON} expiry #${i}`,
      });
      if (out.outcome !== 'granted') throw new Error(`expected a grant, got ${out.outcome}`);
      grants.push(out.grant.id);
    }
    const closedAt = new Map<string, number>();
    for (const id of grants) {
      t.gw.sessions.register(id, {
        id: randomUUID(),
        kind: 'test',
        username: 'alice',
        async close() {
          closedAt.set(id, wallNow());
        },
      });
    }
    const revokedSeen = arrivals(requesterSock, (m) => notification('grant.revoked')(m)?.grant.id);
    // One instant for all 200: whole milliseconds, as the store keeps them.
    const expiry = new Date(Math.ceil(Date.now() + EXPIRY_LEAD_MS));
    await t.gw.store.db.updateTable('grants').set({ expires_at: expiry }).where('id', 'in', grants).execute();
    t.gw.scheduler.kick(expiry);
    const expiryMs = expiry.getTime();
    // performance.now() of the expiry instant, to place socket arrivals on the same axis.
    const expiryPerf = expiryMs - performance.timeOrigin;
    const notified = await Promise.all(
      grants.map((id) => revokedSeen.wait(id, EXPIRY_LEAD_MS + 30_000).then((at) => at - expiryPerf)),
    );
    revokedSeen.stop();
    const ledger = (await t.gw.ledger.list({ kind: 'revocation.completed', limit: 10_000 })).filter((e) =>
      grants.includes(e.data.grantId as string),
    );
    const revokedEvents = (await t.gw.ledger.list({ kind: 'grant.revoked', limit: 10_000 })).filter((e) =>
      grants.includes(e.data.grantId as string),
    );
    const sessionsClosed = grants.map((id) => (closedAt.get(id) ?? Number.NaN) - expiryMs);
    const completedAt = ledger.map((e) => new Date(e.at).getTime() - expiryMs);
    const revokedAt = revokedEvents.map((e) => new Date(e.at).getTime() - expiryMs);
    const allClosed = ledger.filter((e) => e.data.sessionsClosed === 1).length;
    const lastDone = Math.max(...sessionsClosed, ...completedAt);
    const within1s =
      closedAt.size === EXPIRING && ledger.length === EXPIRING && allClosed === EXPIRING && lastDone <= 1000;

    // ---------- report ----------
    const base = summarize(baseline);
    const rows: Array<{ metric: string; from: string; s: Summary }> = [
      { metric: 'ws ping → pong (baseline)', from: 'send', s: base },
      { metric: 'request → request.pending pushed', from: 'POST start', s: summarize(requestPush) },
      { metric: '  (request HTTP response)', from: 'POST start', s: summarize(requestHttp) },
      { metric: 'approval → request.decided pushed', from: 'POST start', s: summarize(approvePush) },
      { metric: '  (approval HTTP response)', from: 'POST start', s: summarize(approveHttp) },
      { metric: 'expiry → grant.revoked in ledger', from: 'expiry', s: summarize(revokedAt) },
      { metric: 'expiry → session closed', from: 'expiry', s: summarize(sessionsClosed) },
      { metric: 'expiry → revocation.completed (ledger at)', from: 'expiry', s: summarize(completedAt) },
      { metric: 'expiry → holder told (grant.revoked push)', from: 'expiry', s: summarize(notified) },
    ];
    const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—').padStart(9);
    const ratio = (v: number) => `${(v / base.p50).toFixed(1)}×`.padStart(8);
    const header = `${'metric'.padEnd(44)}${'n'.padStart(5)}${'p50 ms'.padStart(9)}${'p95 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'max ms'.padStart(9)}${'p50/base'.padStart(9)}${'p99/base'.padStart(9)}${'max/base'.padStart(9)}`;
    console.log('');
    console.log(
      `Sallyport access lifecycle — PGlite store, ${SEEDED} pending requests seeded, ${cpus().length} CPUs, Node ${process.version}`,
    );
    console.log(`baseline p50 (ws ping → pong): ${base.p50.toFixed(3)} ms; ratios below are against it`);
    console.log(header);
    console.log('-'.repeat(header.length));
    for (const r of rows) {
      console.log(
        `${r.metric.padEnd(44)}${String(r.s.n).padStart(5)}${ms(r.s.p50)}${ms(r.s.p95)}${ms(r.s.p99)}${ms(r.s.max)} ${ratio(r.s.p50)} ${ratio(r.s.p99)} ${ratio(r.s.max)}`,
      );
    }
    console.log('');
    console.log(
      `expiry of ${EXPIRING} grants at one instant: last session closed +${Math.max(...sessionsClosed).toFixed(1)} ms, last revocation.completed +${Math.max(...completedAt).toFixed(0)} ms, last holder notice +${Math.max(...notified).toFixed(1)} ms`,
    );
    console.log(
      `sessions closed ${closedAt.size}/${EXPIRING}, revocation.completed ${ledger.length}/${EXPIRING} (with sessionsClosed=1: ${allClosed}); all within 1 s of expiry: ${within1s ? 'YES' : 'NO'}`,
    );

    const result = {
      bench: 'lifecycle',
      at: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      store: t.gw.store.kind,
      seeded: SEEDED,
      seedMsPerRequest: seedMs / SEEDED,
      samples: SAMPLES,
      warmup: WARMUP,
      baselineP50Ms: base.p50,
      metrics: Object.fromEntries(
        rows.map((r) => [
          r.metric.trim(),
          {
            from: r.from,
            ...r.s,
            p50OverBaseline: r.s.p50 / base.p50,
            p99OverBaseline: r.s.p99 / base.p50,
            maxOverBaseline: r.s.max / base.p50,
          },
        ]),
      ),
      expiry: {
        grants: EXPIRING,
        sessionsClosed: closedAt.size,
        revocationsCompleted: ledger.length,
        completedWithOneSessionClosed: allClosed,
        lastSessionClosedMs: Math.max(...sessionsClosed),
        lastRevocationCompletedMs: Math.max(...completedAt),
        lastHolderNoticeMs: Math.max(...notified),
        allWithin1s: within1s,
      },
      totalSeconds: (performance.now() - started) / 1000,
    };
    const dir = new URL('./results/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    const file = new URL(`lifecycle-${result.at.replace(/[:.]/g, '-')}.json`, dir);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwritten ${file.pathname} (run took ${result.totalSeconds.toFixed(1)} s)`);
  } finally {
    for (const s of sockets) s.close();
    await t.stop();
  }
}

function log(line: string) {
  process.stderr.write(`${line}\n`);
}

await main();
