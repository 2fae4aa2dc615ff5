// The access lifecycle through the `sallyport` CLI, called in-process against a real gateway.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import type { Io } from '../../src/cli/output';
import { startTestGateway, type TestGateway } from '../rig/gateway';

let t: TestGateway;
let home: string;
const tokens: Record<'alice' | 'bob' | 'carol', string> = { alice: '', bob: '', carol: '' };

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const REASON = 'investigate the failing nightly job';

const rules = [
  {
    name: 'devs-staging',
    requesters: { groups: ['developers'] },
    targets: { labels: { env: 'staging' } },
    levels: ['read', 'write'],
    maxDuration: '8h',
    approval: 'auto',
  },
  {
    name: 'devs-prod',
    requesters: { groups: ['developers'] },
    targets: { labels: { env: 'prod' } },
    levels: ['read'],
    maxDuration: '2h',
    approval: { approvers: { groups: ['approvers'] }, count: 1 },
    breakGlass: true,
  },
] as const;
const targets = [
  {
    id: 'pg-staging',
    kind: 'postgres',
    host: 'db-staging.internal',
    user: 'app',
    database: 'app',
    labels: { env: 'staging' },
  },
  {
    id: 'pg-prod',
    kind: 'postgres',
    host: 'db-prod.internal',
    user: 'app',
    database: 'app',
    labels: { env: 'prod' },
  },
] as const;

beforeAll(async () => {
  home = mkdtempSync(path.join(tmpdir(), 'sallyport-cli-'));
  t = await startTestGateway({
    config: {
      access: { rules: rules as never },
      targets: targets as never,
    },
  });
  [tokens.alice, tokens.bob, tokens.carol] = await Promise.all([
    t.token('alice'),
    t.token('bob'),
    t.token('carol'),
  ]);
});
afterAll(async () => {
  await t?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

interface Run {
  code: Promise<number>;
  out: string[];
  err: string[];
}

/** Starts the CLI in-process; output is captured as it is written. */
function start(argv: string[], as?: keyof typeof tokens, env: NodeJS.ProcessEnv = {}): Run {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s) };
  const base: NodeJS.ProcessEnv = { SALLYPORT_HOME: home, SALLYPORT_GATEWAY: t.url };
  if (as) base.SALLYPORT_TOKEN = tokens[as];
  return { code: main(argv, io, { ...base, ...env }), out, err };
}

async function run(argv: string[], as?: keyof typeof tokens, env?: NodeJS.ProcessEnv) {
  const r = start(argv, as, env);
  const code = await r.code;
  return { code, out: r.out.join('\n'), err: r.err.join('\n') };
}

async function until(what: string, cond: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts `request pg-prod --wait` as alice and returns once it is pending and listening live. */
async function pendingWait(extra: string[] = []) {
  const r = start(
    ['request', 'pg-prod', '--level', 'read', '--duration', '1h', '--reason', REASON, '--wait', ...extra],
    'alice',
  );
  await until('live updates', () => r.err.some((l) => l.includes('live updates connected')));
  const id = new RegExp(`waiting for a decision on (${UUID})`).exec(r.err.join('\n'))?.[1];
  expect(id).toBeDefined();
  return { ...r, id: id! };
}

describe('request', () => {
  it('grants at once where a rule says auto, in text and JSON', async () => {
    const text = await run(
      ['request', 'pg-staging', '--level', 'read', '--duration', '2h', '--reason', REASON],
      'alice',
    );
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(new RegExp(`granted: grant ${UUID}`));
    expect(text.out).toMatch(/expires: .* \(in 1h59m|expires: .* \(in 2h/);

    const json = await run(
      ['request', 'pg-staging', '--level', 'write', '--duration', '3600', '--reason', REASON, '--json'],
      'alice',
    );
    expect(json.code, json.err).toBe(0);
    const parsed = JSON.parse(json.out);
    expect(parsed).toMatchObject({
      outcome: 'granted',
      grant: { holder: 'alice', targetId: 'pg-staging', level: 'write', status: 'active' },
      request: { status: 'approved', durationSeconds: 3600 },
    });
  });

  it('without --wait, prints the pending request and who can approve it', async () => {
    const r = await run(['request', 'pg-prod', '-l', 'read', '-d', '30m', '-r', REASON], 'alice');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`pending: request ${UUID}`));
    expect(r.out).toContain('1 approval from group:approvers');
    const id = new RegExp(`request (${UUID})`).exec(r.out)![1]!;

    // bob, an approver, sees it in his inbox; alice cancels it.
    const inbox = await run(['requests', '--inbox', '--status', 'pending'], 'bob');
    expect(inbox.code, inbox.err).toBe(0);
    expect(inbox.out.split('\n')[0]).toMatch(
      /^ID\s+REQUESTER\s+TARGET\s+LEVEL\s+DURATION\s+STATUS\s+CREATED$/,
    );
    const row = inbox.out.split('\n').find((l) => l.startsWith(id));
    expect(row).toMatch(/alice\s+pg-prod\s+read\s+30m\s+pending/);
    expect((await run(['requests', '--inbox'], 'alice')).out).not.toContain(id);

    const cancelled = await run(['cancel', id], 'alice');
    expect(cancelled.code, cancelled.err).toBe(0);
    expect(cancelled.out).toContain(`cancelled request ${id}`);
    const mine = JSON.parse((await run(['requests', '--json'], 'alice')).out) as Array<{
      id: string;
      status: string;
    }>;
    expect(mine.find((m) => m.id === id)?.status).toBe('cancelled');
  });

  it('--wait returns the grant as soon as an approver approves', async () => {
    const w = await pendingWait();
    const t0 = performance.now();
    let exitedAt = 0;
    const aliceDone = w.code.then((c) => {
      exitedAt = performance.now();
      return c;
    });
    const approved = await run(['approve', w.id, '--reason', 'fine, go ahead', '--json'], 'bob');
    const approveReturnedAt = performance.now();
    expect(approved.code, approved.err).toBe(0);
    const grantId = JSON.parse(approved.out).grant.id as string;

    expect(await aliceDone).toBe(0);
    expect(w.out.join('\n')).toContain(`granted: grant ${grantId}`);
    console.log(
      `[cli-access] approve → --wait exit: ${(exitedAt - t0).toFixed(0)} ms from the approve command's start ` +
        `(approve returned after ${(approveReturnedAt - t0).toFixed(0)} ms)`,
    );
  });

  it('--wait exits 4 with the reason when denied', async () => {
    const w = await pendingWait();
    const denied = await run(['deny', w.id, '--reason', 'not during the release freeze'], 'bob');
    expect(denied.code, denied.err).toBe(0);
    expect(await w.code).toBe(4);
    expect(w.out.join('\n')).toContain('denied by bob: not during the release freeze');
  });

  it('--wait exits 5 when the request is cancelled meanwhile (found by polling)', async () => {
    const w = await pendingWait(['--json']);
    expect((await run(['cancel', w.id], 'alice')).code).toBe(0);
    expect(await w.code).toBe(5);
    expect(JSON.parse(w.out.at(-1)!)).toMatchObject({ outcome: 'cancelled', request: { id: w.id } });
  });

  it('--wait --timeout exits 6 and leaves the request pending', async () => {
    const r = await run(
      [
        'request',
        'pg-prod',
        '--level',
        'read',
        '--duration',
        '1h',
        '--reason',
        REASON,
        '--wait',
        '--timeout',
        '1s',
      ],
      'alice',
    );
    expect(r.code).toBe(6);
    expect(r.err).toMatch(/timed out: request .* is still pending/);
    const id = new RegExp(`pending: request (${UUID})`).exec(r.out)![1]!;
    expect((await run(['cancel', id], 'alice')).code).toBe(0);
  });

  it('--export prints only shell lines that eval in bash', async () => {
    const r = await run(
      [
        'request',
        'pg-staging',
        '--level',
        'read',
        '--duration',
        '15m',
        '--reason',
        REASON,
        '--wait',
        '--export',
      ],
      'alice',
    );
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.every((l) => /^export SALLYPORT_(GRANT_ID|GRANT_EXPIRES_AT|TARGET)='[^']*'$/.test(l))).toBe(
      true,
    );
    const file = path.join(home, 'grant.env');
    writeFileSync(file, `${r.out}\n`);
    const shell = execFileSync(
      'bash',
      [
        '-c',
        'eval "$(cat "$1")"; echo "$SALLYPORT_GRANT_ID $SALLYPORT_TARGET $SALLYPORT_GRANT_EXPIRES_AT"',
        'x',
        file,
      ],
      { encoding: 'utf8' },
    ).trim();
    const [grantId, target, expires] = shell.split(' ');
    expect(grantId).toMatch(new RegExp(`^${UUID}$`));
    expect(target).toBe('pg-staging');
    expect(Date.parse(expires!) - Date.now()).toBeGreaterThan(14 * 60_000);
    const grants = JSON.parse((await run(['grants', '--active', '--json'], 'alice')).out) as Array<{
      id: string;
    }>;
    expect(grants.map((g) => g.id)).toContain(grantId);
  });

  it("prints the gateway's reason on refusals: 3 for policy, 1 for an invalid request naming the field", async () => {
    const tooLong = await run(
      ['request', 'pg-prod', '--level', 'read', '--duration', '3h', '--reason', REASON],
      'alice',
    );
    expect(tooLong.code).toBe(3);
    expect(tooLong.err).toContain('refused: 3h is longer than the 2h allowed at level read on pg-prod');

    const unknown = await run(
      ['request', 'pg-nowhere', '--level', 'read', '--duration', '1h', '--reason', REASON],
      'alice',
    );
    expect(unknown.code).toBe(3);
    expect(unknown.err).toContain('refused: no target "pg-nowhere"');

    const level = await run(
      ['request', 'pg-prod', '--level', 'write', '--duration', '1h', '--reason', REASON, '--json'],
      'alice',
    );
    expect(level.code).toBe(3);
    expect(JSON.parse(level.out)).toMatchObject({ outcome: 'refused', code: 'level_not_allowed' });

    const noReason = await run(['request', 'pg-prod', '--level', 'read', '--duration', '1h'], 'alice');
    expect(noReason.code).toBe(1);
    expect(noReason.err).toMatch(/invalid body: reason: /);

    const badDuration = await run(
      ['request', 'pg-prod', '-l', 'read', '-d', 'forever', '-r', REASON],
      'alice',
    );
    expect(badDuration.code).toBe(1);
    expect(badDuration.err).toContain('"forever" is not a duration');
  });

  it('refuses self-approval with exit 3', async () => {
    const r = await run(['request', 'pg-prod', '-l', 'read', '-d', '10m', '-r', REASON, '--json'], 'alice');
    const id = JSON.parse(r.out).request.id as string;
    const self = await run(['approve', id], 'alice');
    expect(self.code).toBe(3);
    expect(self.err).toContain('you cannot approve your own request');
    expect((await run(['cancel', id], 'alice')).code).toBe(0);
  });
});

describe('grants', () => {
  it('lists grants and lets the holder revoke one', async () => {
    const r = await run(['request', 'pg-staging', '-l', 'read', '-d', '1h', '-r', REASON, '--json'], 'alice');
    const grantId = JSON.parse(r.out).grant.id as string;

    const list = await run(['grants', '--active'], 'alice');
    expect(list.out.split('\n')[0]).toMatch(/^ID\s+HOLDER\s+TARGET\s+LEVEL\s+STATUS\s+EXPIRES/);
    expect(list.out).toMatch(new RegExp(`${grantId}\\s+alice\\s+pg-staging\\s+read\\s+active`));

    const revoked = await run(['revoke', grantId, '--reason', 'finished the investigation'], 'alice');
    expect(revoked.code, revoked.err).toBe(0);
    expect(revoked.out).toContain(`revoked grant ${grantId}`);
    expect(revoked.out).toMatch(/revocation: completed/);

    const active = JSON.parse((await run(['grants', '--active', '--json'], 'alice')).out) as Array<{
      id: string;
    }>;
    expect(active.map((g) => g.id)).not.toContain(grantId);
    const again = await run(['revoke', grantId, '--reason', 'once more'], 'alice');
    expect(again.code).toBe(1);
    expect(again.err).toContain('already revoked');

    expect((await run(['grants', '--all'], 'alice')).code).toBe(3);
    expect((await run(['grants', '--all'], 'carol')).out).toContain(grantId);
  });

  it('break-glass: granted at once, then listed for approvers and reviewed with a note', async () => {
    const taken = await run(
      [
        'request',
        'pg-prod',
        '-l',
        'read',
        '-d',
        '30m',
        '-r',
        'outage INC-77, the pager woke me',
        '--break-glass',
        '--json',
      ],
      'alice',
    );
    expect(taken.code, taken.err).toBe(0);
    const grantId = JSON.parse(taken.out).grant.id as string;

    const list = await run(['break-glass'], 'bob');
    expect(list.code, list.err).toBe(0);
    expect(list.out.split('\n')[0]).toMatch(/^GRANT\s+HOLDER\s+TARGET\s+LEVEL\s+TAKEN\s+STATUS\s+WHY/);
    expect(list.out).toMatch(
      new RegExp(`${grantId}\\s+alice\\s+pg-prod\\s+read\\s+\\S+\\s+active\\s+outage INC-77`),
    );

    const own = await run(['break-glass', 'review', grantId, '--note', 'it was fine'], 'alice');
    expect(own.code).toBe(3);
    expect(own.err).toContain('someone else must review your break-glass access');

    const note = 'checked the session: read-only look at the orders table for INC-77';
    const done = await run(['break-glass', 'review', grantId, '--note', note], 'bob');
    expect(done.code, done.err).toBe(0);
    expect(done.out).toBe(`reviewed break-glass grant ${grantId} (alice on pg-prod, read):\n  ${note}`);
    expect((await run(['break-glass', '--json'], 'bob')).out).not.toContain(grantId);
    expect((await run(['grants'], 'alice')).out).toMatch(
      new RegExp(`${grantId}.*break-glass, reviewed by bob`),
    );

    expect((await run(['revoke', grantId, '--reason', 'outage over'], 'alice')).code).toBe(0);
  });
});

describe('policy explain', () => {
  it('gives the same answer from the gateway and offline from the config file', async () => {
    const online = await run(['policy', 'explain', '--target', 'pg-prod', '--json'], 'alice');
    expect(online.code, online.err).toBe(0);
    const fromGateway = JSON.parse(online.out);
    expect(
      fromGateway.rules.filter((r: { applies: boolean }) => r.applies).map((r: { rule: string }) => r.rule),
    ).toEqual(['devs-prod']);

    const file = path.join(home, 'sallyport.yaml');
    writeFileSync(
      file,
      [
        'identity:',
        '  devProvider:',
        '    enabled: true',
        'access:',
        '  rules:',
        ...rules.flatMap((r) => [`    - ${JSON.stringify(r)}`]),
        'targets:',
        ...targets.map((x) => `  - ${JSON.stringify(x)}`),
        '',
      ].join('\n'),
    );
    const offline = await run(
      [
        'policy',
        'explain',
        '--target',
        'pg-prod',
        '--user',
        'alice',
        '--groups',
        'developers',
        '--config',
        file,
        '--json',
      ],
      undefined,
      { SALLYPORT_GATEWAY: 'http://127.0.0.1:1' }, // no gateway needed
    );
    expect(offline.code, offline.err).toBe(0);
    expect(JSON.parse(offline.out)).toEqual(fromGateway);

    const text = await run(['policy', 'explain', '--target', 'pg-prod'], 'alice');
    expect(text.out).toContain('rules that apply: devs-prod');
    expect(text.out).toMatch(/devs-staging\s+no\s+target does not match/);
    expect(text.out).toMatch(/who can reach pg-prod without approval:\n {2}nobody/);
    expect(text.out).toContain('group:developers at read, approved by 1 of group:approvers (rule devs-prod)');

    const carolView = await run([
      'policy',
      'explain',
      '--target',
      'pg-staging',
      '--groups',
      'admins',
      '--config',
      file,
      '--user',
      'carol',
    ]);
    expect(carolView.out).toContain('no rule applies: carol cannot request pg-staging');
    expect(carolView.out).toContain('group:developers at read, write (rule devs-staging)');

    const missing = await run(['policy', 'explain', '--target', 'pg-nope', '--config', file]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no target "pg-nope"');
  });
});

describe('login', () => {
  it('signs in with client credentials and remembers the session', async () => {
    const own = mkdtempSync(path.join(tmpdir(), 'sallyport-cli-login-'));
    try {
      const io = { out: [] as string[], err: [] as string[] };
      const capture: Io = { out: (s) => void io.out.push(s), err: (s) => void io.err.push(s) };
      const code = await main(
        ['login', '--gateway', t.url, '--client-id', 'sallyport-ci', '--client-secret', 'sallyport-ci-demo'],
        capture,
        { SALLYPORT_HOME: own },
      );
      expect(code, io.err.join('\n')).toBe(0);
      expect(io.out.join('\n')).toContain('as sallyport-ci');
      const out: string[] = [];
      expect(
        await main(
          ['whoami', '--json'],
          { out: (s) => void out.push(s), err: () => {} },
          { SALLYPORT_HOME: own },
        ),
      ).toBe(0);
      expect(JSON.parse(out.join('\n'))).toMatchObject({
        username: 'sallyport-ci',
        kind: 'service',
        groups: expect.arrayContaining(['developers']),
      });
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });
});

describe('audit', () => {
  it('exports JSON lines and filters', async () => {
    const r = await run(['audit', '--format', 'jsonl', '--since', '1h ago'], 'carol');
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n');
    expect(lines.length).toBeGreaterThan(10);
    for (const l of lines)
      expect(JSON.parse(l)).toMatchObject({
        kind: expect.any(String),
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      });

    const kinds = await run(
      ['audit', '--kind', 'request.denied', '--actor', 'bob', '--target', 'pg-prod'],
      'carol',
    );
    expect(kinds.out.split('\n')[0]).toMatch(/^SEQ\s+AT\s+KIND\s+ACTOR/);
    expect(kinds.out.split('\n').slice(1)).toHaveLength(1);
    expect(kinds.out).toMatch(/request\.denied\s+bob\s+alice\s+pg-prod/);

    expect((await run(['audit', '--limit', '2', '--json'], 'carol')).out).toSatisfy(
      (s: string) => JSON.parse(s).length === 2,
    );
    expect((await run(['audit'], 'alice')).code).toBe(3);
  });

  it('--verify exits 0 on an intact ledger and 7 naming the tampered row', async () => {
    const ok = await run(['audit', '--verify'], 'carol');
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/^ledger intact: \d+ events, head [0-9a-f]{64}$/);

    await sql`UPDATE audit_events SET data = ${JSON.stringify({ tampered: true })}::jsonb WHERE seq = 3`.execute(
      t.gw.store.db,
    );
    const bad = await run(['audit', '--verify'], 'carol');
    expect(bad.code).toBe(7);
    expect(bad.out).toMatch(/^ledger TAMPERED at seq 3 \(id [^)]+\): /);
  });
});
