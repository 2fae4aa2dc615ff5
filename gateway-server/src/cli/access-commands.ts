import {
  type AuditEventView,
  type CreateAccessRequest,
  createGatewayClient,
  type GatewayClient,
  GatewayError,
  type GrantView,
  type PolicyExplanation,
  type RequestView,
  ServerMessage,
} from '@sallyport/protocol';
import { type Command, CommanderError } from 'commander';
import WebSocket from 'ws';
import { loadConfigFile } from '../config/load';
import { explain, formatDuration, parseDuration, type TargetFacts } from '../policy';
import { type Io, printable, table } from './output';
import { readSession, resolveSession } from './session';

/**
 * The access lifecycle from the command line: request (and wait), decide,
 * list, revoke, audit and explain. Exit codes beyond main.ts's:
 * 3 refused, 4 denied, 5 expired or cancelled, 6 --timeout, 7 ledger tampered.
 */
export const EXIT = { ok: 0, refused: 3, denied: 4, expired: 5, timeout: 6, tampered: 7 } as const;

/**
 * Ends a command with an exit code once its output is printed. main.ts returns
 * a CommanderError's exit code as is, without printing anything more.
 */
class Exit extends CommanderError {
  constructor(code: number, what: string) {
    super(code, `sallyport.${what}`, what);
  }
}

const POLL_MS = 2000;
const RECONNECT_MS = 2000;

/** `7200`, `90s`, `2h`, `1h30m` → seconds. */
function durationArg(text: string, what: string): number {
  const s = /^\d+$/.test(text.trim()) ? Number(text.trim()) : parseDuration(text);
  if (s === undefined || !Number.isSafeInteger(s) || s <= 0) {
    throw new Error(`${what} ${text}: expected seconds or a duration like 30s, 15m, 2h`);
  }
  return s;
}

/** `--since`: an ISO timestamp, or `1h` / `2d ago` meaning that long before now. */
export function sinceArg(text: string, now = new Date()): string {
  const rel = text.trim().replace(/\s+ago$/i, '');
  const secs = parseDuration(rel);
  if (secs !== undefined) return new Date(now.getTime() - secs * 1000).toISOString();
  const t = Date.parse(text);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(text.trim())) {
    throw new Error(
      `--since ${text}: expected an ISO time (2025-01-31T12:00:00Z) or a duration ago (1h, 2d ago)`,
    );
  }
  return new Date(t).toISOString();
}

const until = (iso: string) => {
  const left = (Date.parse(iso) - Date.now()) / 1000;
  return left > 0 ? `${iso} (in ${formatDuration(left)})` : `${iso} (past)`;
};

const approversText = (r: RequestView) => {
  const who = [...r.approvers.users.map((u) => `user:${u}`), ...r.approvers.groups.map((g) => `group:${g}`)];
  return `${r.approvalsRequired} approval${r.approvalsRequired === 1 ? '' : 's'} from ${who.join(', ') || '(nobody)'}`;
};

const grantText = (g: GrantView) =>
  [
    `granted: grant ${g.id}`,
    `  target:  ${g.targetId} (${g.level})`,
    `  holder:  ${g.holder}`,
    `  expires: ${until(g.expiresAt)}`,
    ...(g.reviewRequired
      ? [
          g.reviewedBy
            ? `  break-glass: reviewed by ${g.reviewedBy} at ${g.reviewedAt ?? ''}${g.reviewNote ? `: ${printable(g.reviewNote)}` : ''}`
            : '  break-glass: flagged for review',
        ]
      : []),
  ].join('\n');

const pendingText = (r: RequestView) =>
  [
    `pending: request ${r.id}`,
    `  target:  ${r.targetId} (${r.level}, ${formatDuration(r.durationSeconds)})`,
    `  needs:   ${approversText(r)}${r.approvals.length ? ` (${r.approvals.length} so far)` : ''}`,
    `  expires: ${until(r.expiresAt)} unless decided`,
    `  approve: sallyport approve ${r.id}`,
  ].join('\n');

const shellQuote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

type Settled =
  | { status: 'approved'; request: RequestView; grant?: GrantView | undefined }
  | { status: 'denied' | 'expired' | 'cancelled'; request: RequestView }
  | { status: 'timeout' };

/**
 * Waits for a decision on a pending request: live over the event socket,
 * and by polling GET /api/requests/:id every 2 s in case the socket drops.
 */
function waitForDecision(opts: {
  client: GatewayClient;
  gateway: string;
  token: string;
  requestId: string;
  timeoutMs?: number | undefined;
  onLive?: () => void;
}): Promise<Settled> {
  const { client, requestId } = opts;
  return new Promise<Settled>((resolve, reject) => {
    let done = false;
    let ws: WebSocket | undefined;
    let pollTimer: NodeJS.Timeout | undefined;
    let reconnectTimer: NodeJS.Timeout | undefined;
    let polling = false;
    let announced = false;
    const timeoutTimer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => finish({ status: 'timeout' }), opts.timeoutMs)
        : undefined;

    function finish(s: Settled | Error) {
      if (done) return;
      done = true;
      clearTimeout(timeoutTimer);
      clearTimeout(pollTimer);
      clearTimeout(reconnectTimer);
      if (ws) {
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
      }
      if (s instanceof Error) reject(s);
      else resolve(s);
    }

    const settle = (request: RequestView, grant?: GrantView) => {
      if (request.id !== requestId || request.status === 'pending') return;
      if (request.status === 'approved') finish({ status: 'approved', request, grant });
      else finish({ status: request.status, request });
    };

    async function poll() {
      if (done || polling) return;
      polling = true;
      try {
        settle(await client.request(requestId));
      } catch (err) {
        // Unreachable or a gateway hiccup: keep trying. Anything else (token expired, gone) ends the wait.
        if (!(err instanceof GatewayError) || (err.status !== 0 && err.status < 500)) {
          finish(err as Error);
          return;
        }
      } finally {
        polling = false;
      }
      if (!done) {
        clearTimeout(pollTimer);
        pollTimer = setTimeout(() => void poll(), POLL_MS);
      }
    }

    function connect() {
      if (done) return;
      const url = `${opts.gateway.replace(/\/$/, '').replace(/^http/, 'ws')}/api/ws`;
      const sock = new WebSocket(url, { headers: { authorization: `Bearer ${opts.token}` } });
      ws = sock;
      sock.on('message', (data) => {
        let parsed: ReturnType<typeof ServerMessage.safeParse>;
        try {
          parsed = ServerMessage.safeParse(JSON.parse(String(data)));
        } catch {
          return;
        }
        if (!parsed.success) return;
        const msg = parsed.data;
        if (msg.type === 'hello') {
          if (!announced) opts.onLive?.();
          announced = true;
          // A decision made before the socket was up arrives by no push: look once now.
          void poll();
        } else if (msg.type === 'notification') {
          const n = msg.notification;
          if (n.event === 'request.decided') settle(n.request, n.grant);
          else if (n.event === 'request.expired') settle(n.request);
        }
      });
      sock.on('error', () => {}); // 'close' follows; polling carries on meanwhile.
      sock.on('close', () => {
        if (done || ws !== sock) return;
        reconnectTimer = setTimeout(connect, RECONNECT_MS);
      });
    }

    connect();
    void poll();
  });
}

export function registerAccessCommands(program: Command, io: Io, env: NodeJS.ProcessEnv) {
  const session = (gatewayFlag?: string) => resolveSession(env, gatewayFlag);
  const client = (gatewayFlag?: string): GatewayClient => {
    const s = session(gatewayFlag);
    return createGatewayClient({ baseUrl: s.gateway, token: () => s.token });
  };
  const json = (value: unknown) => io.out(JSON.stringify(value, null, 2));

  // ---------- request ----------
  program
    .command('request')
    .description('ask for access to a target; granted at once, or pending until approvers decide')
    .argument('<target>', 'target id')
    .option('-l, --level <level>', 'access level: read, write, admin (PostgreSQL); shell, exec-only (SSH)')
    .option('-d, --duration <duration>', 'how long: seconds, or 30m, 2h, 1h30m')
    .option('-r, --reason <text>', 'why you need access (required by the gateway)')
    .option('-t, --ticket <ref>', 'ticket reference')
    .option('--break-glass', 'emergency access where policy allows it: granted at once, flagged for review')
    .option('--extends <grantId>', 'extend this active grant of yours instead of minting a new one')
    .option('-w, --wait', 'when pending, block until the request is decided')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 6)')
    .option('--export', 'print only `export SALLYPORT_GRANT_ID=…` lines for eval in a shell')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(
      async (
        targetId: string,
        opts: {
          level?: string;
          duration?: string;
          reason?: string;
          ticket?: string;
          breakGlass?: boolean;
          extends?: string;
          wait?: boolean;
          timeout?: string;
          export?: boolean;
          gateway?: string;
          json?: boolean;
        },
      ) => {
        const timeoutMs =
          opts.timeout !== undefined ? durationArg(opts.timeout, '--timeout') * 1000 : undefined;
        if (timeoutMs !== undefined && !opts.wait) throw new Error('--timeout only makes sense with --wait');
        if (opts.export && opts.json) throw new Error('give --export or --json, not both');
        // Human chatter goes to stderr when stdout is reserved for `eval`.
        const say = opts.export ? (t: string) => io.err(t) : (t: string) => io.out(t);
        const s = session(opts.gateway);
        const api = createGatewayClient({ baseUrl: s.gateway, token: () => s.token });

        const duration =
          opts.duration === undefined
            ? undefined
            : /^\d+$/.test(opts.duration.trim())
              ? Number(opts.duration.trim())
              : opts.duration.trim();
        // The gateway is the one validator: it names every missing or invalid field at once.
        const body = {
          targetId,
          ...(opts.level !== undefined ? { level: opts.level } : {}),
          ...(duration !== undefined ? { duration } : {}),
          ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
          ...(opts.ticket !== undefined ? { ticket: opts.ticket } : {}),
          ...(opts.breakGlass ? { breakGlass: true } : {}),
          ...(opts.extends !== undefined ? { extendsGrantId: opts.extends } : {}),
        } as CreateAccessRequest;

        const granted = (request: RequestView, grant: GrantView) => {
          if (opts.export) {
            io.out(
              [
                `export SALLYPORT_GRANT_ID=${shellQuote(grant.id)}`,
                `export SALLYPORT_GRANT_EXPIRES_AT=${shellQuote(grant.expiresAt)}`,
                `export SALLYPORT_TARGET=${shellQuote(grant.targetId)}`,
              ].join('\n'),
            );
            io.err(
              `granted: grant ${grant.id} on ${grant.targetId} (${grant.level}) until ${grant.expiresAt}`,
            );
          } else if (opts.json) json({ outcome: 'granted', request, grant });
          else say(grantText(grant));
        };

        let outcome: Awaited<ReturnType<GatewayClient['requestAccess']>>;
        try {
          outcome = await api.requestAccess(body);
        } catch (err) {
          // A policy refusal (403) or a target that does not exist: the gateway said no, with its reason.
          if (err instanceof GatewayError && (err.status === 403 || err.code === 'unknown_target')) {
            if (opts.json) json({ outcome: 'refused', code: err.code, reason: err.message });
            io.err(`refused: ${err.message}${err.requestId ? ` (gateway request ${err.requestId})` : ''}`);
            throw new Exit(EXIT.refused, 'refused');
          }
          throw err;
        }

        if (outcome.outcome === 'granted') {
          granted(outcome.request, outcome.grant);
          if (outcome.request.breakGlass)
            io.err('break-glass: every approver has been notified; this grant will be reviewed');
          return;
        }

        const pending = outcome.request;
        if (!opts.wait) {
          if (opts.json) json({ outcome: 'pending', request: pending });
          else say(pendingText(pending));
          return;
        }
        if (!opts.json) say(pendingText(pending));
        io.err(
          `waiting for a decision on ${pending.id}${timeoutMs ? ` (at most ${formatDuration(timeoutMs / 1000)})` : ''}…`,
        );
        const result = await waitForDecision({
          client: api,
          gateway: s.gateway,
          token: s.token,
          requestId: pending.id,
          timeoutMs,
          onLive: () => io.err('live updates connected'),
        });

        switch (result.status) {
          case 'approved': {
            const r = result.request;
            const grant =
              result.grant ??
              (r.grantId ? (await api.grants({ scope: 'mine' })).find((g) => g.id === r.grantId) : undefined);
            if (!grant)
              throw new Error(`request ${r.id} was approved but its grant ${r.grantId ?? ''} is not visible`);
            granted(r, grant);
            return;
          }
          case 'denied': {
            const r = result.request;
            if (opts.json) json({ outcome: 'denied', request: r });
            const text = `denied by ${r.decidedBy ?? 'an approver'}: ${r.decisionReason ?? '(no reason given)'}`;
            if (opts.json || opts.export) io.err(text);
            else io.out(text);
            throw new Exit(EXIT.denied, 'denied');
          }
          case 'expired':
          case 'cancelled': {
            const r = result.request;
            if (opts.json) json({ outcome: result.status, request: r });
            const text =
              result.status === 'expired'
                ? `expired: nobody approved request ${r.id} in time`
                : `cancelled: request ${r.id} was cancelled by ${r.decidedBy ?? 'someone'}`;
            if (opts.json || opts.export) io.err(text);
            else io.out(text);
            throw new Exit(EXIT.expired, result.status);
          }
          case 'timeout': {
            if (opts.json) json({ outcome: 'timeout', request: pending });
            io.err(
              `timed out: request ${pending.id} is still pending (cancel it with \`sallyport cancel ${pending.id}\`)`,
            );
            throw new Exit(EXIT.timeout, 'timeout');
          }
        }
      },
    );

  // ---------- requests ----------
  program
    .command('requests')
    .description('list access requests: yours (default), your approval inbox, or all (admin)')
    .option('--inbox', 'requests you may approve')
    .option('--all', 'every request (admin)')
    .option('-s, --status <status>', 'pending, approved, denied, expired or cancelled')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: { inbox?: boolean; all?: boolean; status?: string; gateway?: string; json?: boolean }) => {
        if (opts.inbox && opts.all) throw new Error('give --inbox or --all, not both');
        const scope = opts.inbox ? 'inbox' : opts.all ? 'all' : 'mine';
        const list = await client(opts.gateway).requests({
          scope,
          ...(opts.status ? { status: opts.status } : {}),
        });
        if (opts.json) return json(list);
        io.out(
          table(
            list.map((r) => ({
              id: r.id,
              requester: r.requester,
              target: r.targetId,
              level: r.level,
              duration: formatDuration(r.durationSeconds),
              status: r.breakGlass ? `${r.status} (break-glass)` : r.status,
              created: r.createdAt,
            })),
            ['id', 'requester', 'target', 'level', 'duration', 'status', 'created'],
          ),
        );
      },
    );

  // ---------- approve / deny / cancel ----------
  program
    .command('approve')
    .description('approve a pending request')
    .argument('<requestId>', 'request id')
    .option('-r, --reason <text>', 'note recorded with the approval')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { reason?: string; gateway?: string; json?: boolean }) => {
      const res = await client(opts.gateway).approve(id, opts.reason);
      if (opts.json) return json(res);
      const r = res.request;
      if (res.grant) {
        io.out(
          `approved request ${r.id}: ${r.requester} has ${res.grant.level} on ${r.targetId} until ${res.grant.expiresAt} (grant ${res.grant.id})`,
        );
      } else {
        io.out(
          `approval recorded on request ${r.id}: ${r.approvals.filter((a) => a.decision === 'approve').length} of ${r.approvalsRequired}; still ${r.status}`,
        );
      }
    });

  program
    .command('deny')
    .description('deny a pending request (a reason is required)')
    .argument('<requestId>', 'request id')
    .requiredOption('-r, --reason <text>', 'why; the requester sees it')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { reason: string; gateway?: string; json?: boolean }) => {
      const r = await client(opts.gateway).deny(id, opts.reason);
      if (opts.json) return json(r);
      io.out(`denied request ${r.id} (${r.requester} on ${r.targetId}): ${r.decisionReason ?? ''}`);
    });

  program
    .command('cancel')
    .description('cancel your pending request')
    .argument('<requestId>', 'request id')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { gateway?: string; json?: boolean }) => {
      const r = await client(opts.gateway).cancel(id);
      if (opts.json) return json(r);
      io.out(`cancelled request ${r.id} (${r.targetId}, ${r.level})`);
    });

  // ---------- grants / revoke ----------
  program
    .command('grants')
    .description('list grants: yours (default) or all (admin)')
    .option('--all', 'every grant (admin)')
    .option('--active', 'only active grants')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(async (opts: { all?: boolean; active?: boolean; gateway?: string; json?: boolean }) => {
      const list = await client(opts.gateway).grants({
        scope: opts.all ? 'all' : 'mine',
        ...(opts.active ? { status: 'active' as const } : {}),
      });
      if (opts.json) return json(list);
      io.out(
        table(
          list.map((g) => ({
            id: g.id,
            holder: g.holder,
            target: g.targetId,
            level: g.level,
            status: g.status === 'active' && Date.parse(g.expiresAt) <= Date.now() ? 'expired' : g.status,
            expires: g.expiresAt,
            revocation: g.revocation === 'none' ? '' : g.revocation,
            review: g.reviewRequired
              ? g.reviewedBy
                ? `break-glass, reviewed by ${g.reviewedBy}`
                : 'break-glass'
              : '',
          })),
          ['id', 'holder', 'target', 'level', 'status', 'expires', 'revocation', 'review'],
        ),
      );
    });

  program
    .command('revoke')
    .description('end a grant now; its live sessions are closed')
    .argument('<grantId>', 'grant id')
    .requiredOption('-r, --reason <text>', 'why; recorded in the ledger')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { reason: string; gateway?: string; json?: boolean }) => {
      const g = await client(opts.gateway).revoke(id, opts.reason);
      if (opts.json) return json(g);
      io.out(
        [
          `revoked grant ${g.id} (${g.holder} on ${g.targetId}, ${g.level})`,
          `  by:         ${g.revokedBy ?? ''} at ${g.revokedAt ?? ''}`,
          `  reason:     ${g.revokeReason ?? ''}`,
          `  revocation: ${g.revocation}${g.revocation === 'completed' ? ' (live sessions closed)' : ''}`,
        ].join('\n'),
      );
    });

  // ---------- audit ----------
  program
    .command('audit')
    .description('read the audit ledger (admin), or check its hash chain with --verify')
    .option('--verify', 'check the hash chain: exit 0 if intact, 7 if tampered')
    .option('--since <time>', 'ISO time, or a duration ago: 1h, 2d ago')
    .option('--kind <kind>', 'only this event kind, e.g. request.created')
    .option('--actor <actor>', 'only events by this actor')
    .option('--target <target>', 'only events about this target')
    .option('-n, --limit <n>', 'at most this many events', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--limit ${v}: expected a positive integer`);
      return n;
    })
    .option('--format <format>', 'table or jsonl', 'table')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        verify?: boolean;
        since?: string;
        kind?: string;
        actor?: string;
        target?: string;
        limit?: number;
        format: string;
        gateway?: string;
        json?: boolean;
      }) => {
        const api = client(opts.gateway);
        if (opts.verify) {
          const v = await api.verifyAudit();
          if (opts.json) json(v);
          if (v.ok) {
            if (!opts.json) io.out(`ledger intact: ${v.count} events, head ${v.head}`);
            return;
          }
          const text = `ledger TAMPERED at seq ${v.seq} (id ${v.id}): ${v.problem}`;
          if (opts.json) io.err(text);
          else io.out(text);
          throw new Exit(EXIT.tampered, 'tampered');
        }
        if (opts.format !== 'table' && opts.format !== 'jsonl') {
          throw new Error(`--format ${opts.format}: expected table or jsonl`);
        }
        const events = await api.audit({
          ...(opts.since ? { since: sinceArg(opts.since) } : {}),
          ...(opts.kind ? { kind: opts.kind } : {}),
          ...(opts.actor ? { actor: opts.actor } : {}),
          ...(opts.target ? { target: opts.target } : {}),
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        });
        if (opts.json) return json(events);
        if (opts.format === 'jsonl') {
          if (events.length) io.out(events.map((e) => JSON.stringify(e)).join('\n'));
          return;
        }
        io.out(
          table(events.map(auditRow), ['seq', 'at', 'kind', 'actor', 'subject', 'target', 'request', 'hash']),
        );
      },
    );

  // ---------- policy explain ----------
  program
    .command('policy')
    .description('access policy tools')
    .command('explain')
    .description('which rules apply to a target, and who can reach it with or without approval')
    .requiredOption('-t, --target <id>', 'target id')
    .option('-u, --user <username>', 'explain for this user (default: you; others need admin or approver)')
    .option('--groups <a,b>', "the user's groups (default: as the gateway knows them)")
    .option('-c, --config <file>', 'evaluate offline against the rules and targets in this config file')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        target: string;
        user?: string;
        groups?: string;
        config?: string;
        gateway?: string;
        json?: boolean;
      }) => {
        let ex: PolicyExplanation;
        let groupsShown: string | undefined = opts.groups;
        if (opts.config) {
          const cfg = loadConfigFile(opts.config, env);
          const targets: TargetFacts[] = [
            ...cfg.targets.map((t) => ({ id: t.id, kind: t.kind, labels: t.labels ?? {} })),
            ...(cfg.demo.postgres
              ? [
                  {
                    id: 'demo-postgres',
                    kind: 'postgres' as const,
                    labels: { ...cfg.demo.labels, kind: 'postgres', demo: 'true' },
                  },
                ]
              : []),
            ...(cfg.demo.ssh
              ? [
                  {
                    id: 'demo-ssh',
                    kind: 'ssh' as const,
                    labels: { ...cfg.demo.labels, kind: 'ssh', demo: 'true' },
                  },
                ]
              : []),
          ];
          const target = targets.find((t) => t.id === opts.target);
          if (!target) {
            throw new Error(
              `no target "${opts.target}" in ${opts.config} (targets added through the API are known only to the gateway)`,
            );
          }
          const groups = (opts.groups ?? '')
            .split(',')
            .map((g) => g.trim())
            .filter(Boolean);
          groupsShown = groups.join(',');
          const username = opts.user ?? readSession(env)?.username ?? env.USER ?? 'you';
          ex = explain(cfg.access, { username, groups }, target);
        } else {
          ex = await client(opts.gateway).explain({
            target: opts.target,
            ...(opts.user ? { user: opts.user } : {}),
            ...(opts.groups !== undefined ? { groups: opts.groups } : {}),
          });
        }
        if (opts.json) return json(ex);
        io.out(explanationText(ex, groupsShown, opts.config));
      },
    );
}

const auditRow = (e: AuditEventView) => ({
  seq: e.seq,
  at: e.at,
  kind: e.kind,
  actor: e.actor,
  subject: e.subject,
  target: e.targetId,
  request: e.requestId,
  hash: e.hash.slice(0, 12),
});

function explanationText(ex: PolicyExplanation, groups: string | undefined, configFile?: string): string {
  const principals = (p: { users: string[]; groups: string[] }) =>
    [...p.users.map((u) => `user:${u}`), ...p.groups.map((g) => `group:${g}`)].join(', ') || '(nobody)';
  const applying = ex.rules.filter((r) => r.applies);
  return [
    `policy for ${ex.target}, for ${ex.user}${groups !== undefined ? ` (groups: ${groups || 'none'})` : ''}${configFile ? ` — offline, from ${configFile}` : ''}`,
    '',
    applying.length
      ? `rules that apply: ${applying.map((r) => r.rule).join(', ')}`
      : `no rule applies: ${ex.user} cannot request ${ex.target} (deny by default)`,
    '',
    table(
      ex.rules.map((r) => ({
        rule: r.rule,
        applies: r.applies ? 'yes' : 'no',
        why: r.why,
        levels: r.levels.join(',') || '(none for this kind)',
        max: r.maxDuration,
        approval: r.approval,
        'break-glass': r.breakGlass ? 'yes' : '',
      })),
      ['rule', 'applies', 'why', 'levels', 'max', 'approval', 'break-glass'],
    ),
    '',
    `who can reach ${ex.target} without approval:`,
    ...(ex.withoutApproval.length
      ? ex.withoutApproval.map((w) => `  ${principals(w)} at ${w.levels.join(', ')} (rule ${w.rule})`)
      : ['  nobody']),
    `who can reach ${ex.target} with approval:`,
    ...(ex.withApproval.length
      ? ex.withApproval.map(
          (w) => `  ${principals(w)} at ${w.levels.join(', ')}, approved by ${w.approvers} (rule ${w.rule})`,
        )
      : ['  nobody']),
  ].join('\n');
}
