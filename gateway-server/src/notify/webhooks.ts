import { createHmac, randomUUID } from 'node:crypto';
import type { GrantView, Notification, RequestView } from '@sallyport/protocol';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Store } from '../store/db';
import type { WebhookDeliveriesTable } from '../store/tables';

type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;

/**
 * Webhooks: every notification the gateway pushes to its users can also be POSTed
 * to chat (Slack-compatible) or to any HTTP receiver (generic JSON).
 *
 * Delivery goes through an outbox: `enqueue` inserts one row per matching webhook
 * into `webhook_deliveries`, and a delivery loop POSTs the rows that are due. A row
 * survives restarts; a failed POST is retried with exponential backoff until
 * `maxAttempts`, then the row is marked `failed` and an error is logged.
 * Delivery is at-least-once: receivers de-duplicate on `x-sallyport-delivery`.
 *
 * Signature scheme (when the webhook has a `secret`):
 *
 *   x-sallyport-timestamp: <unix seconds at the time of this attempt>
 *   x-sallyport-signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *
 * A receiver recomputes the HMAC over the exact bytes it received, compares in
 * constant time, and rejects timestamps older than a few minutes (replay).
 * Every retry carries a fresh timestamp and signature; the body stays the same.
 * See docs/webhooks.md.
 */

/** Every notification event, checked against the protocol's union at compile time. */
export const WEBHOOK_EVENTS = [
  'request.pending',
  'request.decided',
  'request.expired',
  'grant.break_glass',
  'grant.expiring',
  'grant.revoked',
  'grant.reviewed',
  'review.pending',
  'review.decided',
] as const satisfies ReadonlyArray<Notification['event']>;
type MissingEvent = Exclude<Notification['event'], (typeof WEBHOOK_EVENTS)[number]>;
const _everyEventListed: [MissingEvent] extends [never] ? true : never = true;
void _everyEventListed;

const isLoopbackHostname = (hostname: string): boolean => {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
};

/** The environment variable that overrides a webhook's secret. */
export const webhookSecretEnv = (name: string): string =>
  `SALLYPORT_WEBHOOK_${name.toUpperCase().replace(/-/g, '_')}_SECRET`;

export const WebhookConfig = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes')
      .describe('Unique name of the webhook (a slug); shown in logs and stored with each delivery.'),
    url: z
      .url({ protocol: /^https?$/ })
      .refine((u) => {
        const parsed = new URL(u);
        return parsed.protocol === 'https:' || isLoopbackHostname(parsed.hostname);
      }, 'use an https:// URL (plain http only for loopback receivers)')
      .describe(
        'Where deliveries are POSTed. https, or http for loopback receivers only. Redirects are not followed.',
      ),
    format: z
      .enum(['json', 'slack'])
      .default('json')
      .describe(
        '`json`: `{id, event, at, notification}`. `slack`: a Slack-compatible `{text, blocks}` message (Slack, Mattermost, Rocket.Chat incoming webhooks).',
      ),
    secret: z
      .string()
      .min(16)
      .optional()
      .describe(
        'Signs each delivery: `x-sallyport-signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`. ' +
          'Env SALLYPORT_WEBHOOK_<NAME>_SECRET takes precedence (NAME upper-cased, dashes as underscores).',
      ),
    events: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1)
      .default([...WEBHOOK_EVENTS])
      .describe('Which notification events to send (default: all).'),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(5000)
      .describe('How long one delivery attempt may take; slower counts as a failed attempt.'),
  })
  .strict();
export type WebhookConfig = z.infer<typeof WebhookConfig>;

/** `sha256=<hex>` over `<timestamp>.<raw body>`. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

// ---------------------------------------------------------------------------
// Payloads

/** The generic JSON body. `id` is the delivery id (the same on every retry). */
export function jsonPayload(id: string, at: Date, n: Notification) {
  return { id, event: n.event, at: at.toISOString(), notification: n };
}

/** `3600` → `1h`, `5400` → `1h 30m`. */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const parts: string[] = [];
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) parts.push(`${d}d`);
  if (h) parts.push(`${h}h`);
  if (m && !d) parts.push(`${m}m`);
  return parts.join(' ');
}

/** Slack mrkdwn treats `<…>` as links and mentions (`<!channel>`): user text must not be able to write them. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
const field = (label: string, value: string) => ({
  type: 'mrkdwn',
  text: clip(`*${label}*\n${value}`, 1900),
});
const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text: clip(text, 2900) } });
const context = (text: string) => ({
  type: 'context',
  elements: [{ type: 'mrkdwn', text: clip(text, 2900) }],
});

function requestFields(r: RequestView) {
  return [
    field('Who', esc(r.requester)),
    field('What', `\`${esc(r.level)}\` on \`${esc(r.targetId)}\``),
    field('How long', humanDuration(r.durationSeconds)),
    field('Why', esc(r.reason)),
    ...(r.ticket ? [field('Ticket', esc(r.ticket))] : []),
  ];
}

function grantFields(g: GrantView) {
  return [
    field('Who', esc(g.holder)),
    field('What', `\`${esc(g.level)}\` on \`${esc(g.targetId)}\``),
    field('Until', g.expiresAt),
  ];
}

/**
 * A Slack-compatible message: `text` (the one-line summary used for notifications and by
 * receivers that ignore blocks) and Block Kit `blocks`. Both are escaped for mrkdwn.
 */
export function slackPayload(n: Notification): { text: string; blocks: Array<Record<string, unknown>> } {
  const m = slackMessage(n);
  return { text: esc(m.text), blocks: m.blocks };
}

/** `text` is plain here (escaped by slackPayload); block texts escape user fields themselves. */
function slackMessage(n: Notification): { text: string; blocks: Array<Record<string, unknown>> } {
  switch (n.event) {
    case 'request.pending': {
      const r = n.request;
      const how = humanDuration(r.durationSeconds);
      const approve = `sallyport approve ${r.id}`;
      return {
        text: `${r.requester} requests ${r.level} access to ${r.targetId} for ${how}: "${clip(r.reason, 500)}". Approve with: ${approve}`,
        blocks: [
          section(
            `:hourglass_flowing_sand: *${esc(r.requester)}* requests \`${esc(r.level)}\` access to \`${esc(r.targetId)}\` — waiting for approval (${r.approvalsRequired} needed)`,
          ),
          { type: 'section', fields: requestFields(r) },
          section(`Approve with the CLI: \`${approve}\`  ·  deny: \`sallyport deny ${r.id} --reason "…"\``),
          context(`Request \`${r.id}\` · rule \`${esc(r.rule)}\` · expires ${r.expiresAt} if nobody decides`),
        ],
      };
    }
    case 'request.decided': {
      const r = n.request;
      const how = humanDuration(r.durationSeconds);
      const by = r.decidedBy ?? 'policy';
      const approved = r.status === 'approved';
      const why = r.decisionReason ? `: "${clip(r.decisionReason, 500)}"` : '';
      return {
        text: `${r.requester}'s request for ${r.level} access to ${r.targetId} (${how}) was ${r.status} by ${by}${why}`,
        blocks: [
          section(
            `${approved ? ':white_check_mark:' : ':no_entry:'} *${esc(r.requester)}*'s request for \`${esc(r.level)}\` on \`${esc(r.targetId)}\` was *${esc(r.status)}* by *${esc(by)}*`,
          ),
          {
            type: 'section',
            fields: [
              ...requestFields(r),
              ...(r.decisionReason ? [field('Decision', esc(r.decisionReason))] : []),
            ],
          },
          context(
            `Request \`${r.id}\`${n.grant ? ` · grant \`${n.grant.id}\` until ${n.grant.expiresAt}` : ''}`,
          ),
        ],
      };
    }
    case 'request.expired': {
      const r = n.request;
      return {
        text: `${r.requester}'s request for ${r.level} access to ${r.targetId} expired: nobody approved it in time`,
        blocks: [
          section(
            `:hourglass: *${esc(r.requester)}*'s request for \`${esc(r.level)}\` on \`${esc(r.targetId)}\` expired: nobody approved it in time`,
          ),
          { type: 'section', fields: requestFields(r) },
          context(`Request \`${r.id}\``),
        ],
      };
    }
    case 'grant.break_glass': {
      const r = n.request;
      const how = humanDuration(r.durationSeconds);
      return {
        text: `BREAK-GLASS: ${r.requester} took ${r.level} access to ${r.targetId} for ${how} without approval: "${clip(r.reason, 500)}". Review required.`,
        blocks: [
          section(
            `:rotating_light: *BREAK-GLASS* — *${esc(r.requester)}* took \`${esc(r.level)}\` access to \`${esc(r.targetId)}\` without approval. Review required.`,
          ),
          { type: 'section', fields: requestFields(r) },
          context(`Request \`${r.id}\` · grant \`${n.grant.id}\` until ${n.grant.expiresAt}`),
        ],
      };
    }
    case 'review.pending': {
      const r = n.review;
      const what = r.kind === 'sql' ? 'statement' : 'command';
      return {
        text: `${r.requester} wants to run a ${what} on ${r.targetId} that needs review (${r.rule}): ${clip(r.text, 1000)}. Approve with: sallyport reviews approve ${r.id}`,
        blocks: [
          section(
            `:mag: *${esc(r.requester)}* wants to run a ${what} on \`${esc(r.targetId)}\` that needs review (rule \`${esc(r.rule)}\`)`,
          ),
          section(`\`\`\`${esc(clip(r.text, 2000))}\`\`\``),
          context(`Review \`${r.id}\` · sha256 \`${r.sha256.slice(0, 16)}…\` · expires ${r.expiresAt}`),
        ],
      };
    }
    case 'review.decided': {
      const r = n.review;
      return {
        text: `${r.requester}'s ${r.kind === 'sql' ? 'statement' : 'command'} on ${r.targetId} was ${r.status}${r.decidedBy ? ` by ${r.decidedBy}` : ''}`,
        blocks: [
          section(
            `${r.status === 'approved' ? ':white_check_mark:' : ':no_entry:'} *${esc(r.requester)}*'s ${r.kind === 'sql' ? 'statement' : 'command'} on \`${esc(r.targetId)}\` was *${esc(r.status)}*${r.decidedBy ? ` by *${esc(r.decidedBy)}*` : ''}`,
          ),
          context(`Review \`${r.id}\``),
        ],
      };
    }
    case 'grant.expiring': {
      const g = n.grant;
      return {
        text: `${g.holder}'s ${g.level} access to ${g.targetId} expires in ${humanDuration(n.secondsLeft)}`,
        blocks: [
          section(
            `:alarm_clock: *${esc(g.holder)}*'s \`${esc(g.level)}\` access to \`${esc(g.targetId)}\` expires in ${humanDuration(n.secondsLeft)}`,
          ),
          context(`Grant \`${g.id}\` · request \`${g.requestId}\``),
        ],
      };
    }
    case 'grant.revoked': {
      const g = n.grant;
      const by = g.revokedBy ?? 'sallyport';
      return {
        text: `${g.holder}'s ${g.level} access to ${g.targetId} was revoked by ${by}: "${clip(n.reason, 500)}"`,
        blocks: [
          section(
            `:lock: *${esc(g.holder)}*'s \`${esc(g.level)}\` access to \`${esc(g.targetId)}\` was revoked by *${esc(by)}*`,
          ),
          { type: 'section', fields: [...grantFields(g), field('Why', esc(n.reason))] },
          context(`Grant \`${g.id}\` · request \`${g.requestId}\``),
        ],
      };
    }
    case 'grant.reviewed': {
      const g = n.grant;
      const by = g.reviewedBy ?? 'someone';
      return {
        text: `${g.holder}'s break-glass ${g.level} access to ${g.targetId} was reviewed by ${by}: "${clip(g.reviewNote ?? '', 500)}"`,
        blocks: [
          section(
            `:mag: *${esc(g.holder)}*'s break-glass \`${esc(g.level)}\` access to \`${esc(g.targetId)}\` was reviewed by *${esc(by)}*`,
          ),
          { type: 'section', fields: [...grantFields(g), field('Found', esc(g.reviewNote ?? ''))] },
          context(`Grant \`${g.id}\` · request \`${g.requestId}\``),
        ],
      };
    }
  }
}

// ---------------------------------------------------------------------------
// Dispatcher

export interface WebhookLog {
  debug(o: object, m: string): void;
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
}

export interface WebhookDispatcherOptions {
  store: Store;
  webhooks: WebhookConfig[];
  log: WebhookLog;
  now?: () => Date;
  fetch?: typeof fetch;
  /** Wait before attempt `attempt + 1`, given `attempt` failed attempts so far. Default 1 s, 2 s, 4 s … capped at 5 min. */
  retryDelayMs?: (attempt: number) => number;
  /** Attempts before a delivery is marked failed. Default 8. */
  maxAttempts?: number;
  /** Longest sleep of the delivery loop: picks up rows enqueued by other gateways sharing the store. Default 15 s. */
  pollMs?: number;
  /** Rows claimed (and POSTed concurrently) per round. Default 20. */
  batchSize?: number;
}

export interface WebhookDispatcher {
  /** Inserts one outbox row per webhook that wants this event, then wakes the delivery loop. Throws when the store fails. */
  enqueue(n: Notification): Promise<void>;
  /** Claims the rows that are due and POSTs them. Resolves to the number of rows attempted. */
  deliverDue(): Promise<number>;
  /** Starts the delivery loop; its first round catches up with rows left from before a restart. */
  start(): void;
  /** Stops the loop; in-flight POSTs are aborted and their rows handed back, due at once. */
  stop(): Promise<void>;
}

export const defaultRetryDelayMs = (attempt: number): number =>
  Math.min(1000 * 2 ** Math.max(0, attempt - 1), 5 * 60_000);

const SHUTDOWN = new Error('webhook dispatcher stopped');

/** How long a claimed row stays invisible to other claimers beyond its webhook's timeout. */
const LEASE_MARGIN_MS = 30_000;

export function createWebhookDispatcher(opts: WebhookDispatcherOptions): WebhookDispatcher {
  const db = opts.store.db;
  const log = opts.log;
  const now = opts.now ?? (() => new Date());
  const doFetch = opts.fetch ?? fetch;
  const retryDelayMs = opts.retryDelayMs ?? defaultRetryDelayMs;
  const maxAttempts = opts.maxAttempts ?? 8;
  const pollMs = opts.pollMs ?? 15_000;
  const batchSize = opts.batchSize ?? 20;
  const hooks = new Map(opts.webhooks.map((w) => [w.name, w]));
  const names = [...hooks.keys()];
  const longestTimeout = Math.max(0, ...opts.webhooks.map((w) => w.timeoutMs));

  let timer: NodeJS.Timeout | undefined;
  let wakeAt = Number.POSITIVE_INFINITY;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = true;
  const inFlight = new Set<AbortController>();

  /**
   * Claiming. One statement: `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
   * RETURNING *` pushes the claimed rows' `next_attempt_at` forward by a lease (the
   * webhook timeout plus a margin). The row lock lasts only for that statement; the
   * lease is what keeps the row away from other gateways sharing the store while the
   * POST runs (they only claim rows whose `next_attempt_at` has passed), and SKIP LOCKED
   * keeps two concurrent claimers from blocking on or taking the same rows. No
   * transaction is held open across the HTTP call. If this gateway dies mid-POST, the
   * lease runs out and another gateway (or this one after restart) retries the row:
   * at-least-once delivery. Rows of webhooks this gateway is not configured with are
   * left alone for the gateways that are.
   */
  async function claim(): Promise<WebhookDeliveryRow[]> {
    if (names.length === 0) return [];
    const at = now();
    const leaseUntil = new Date(at.getTime() + longestTimeout + LEASE_MARGIN_MS);
    return db
      .updateTable('webhook_deliveries')
      .set({ next_attempt_at: leaseUntil })
      .where(
        'id',
        'in',
        db
          .selectFrom('webhook_deliveries')
          .select('id')
          .where('status', '=', 'pending')
          .where('next_attempt_at', '<=', at)
          .where('webhook', 'in', names)
          .orderBy('next_attempt_at')
          .orderBy('created_at')
          .limit(batchSize)
          .forUpdate()
          .skipLocked(),
      )
      .returningAll()
      .execute();
  }

  /** Writes an attempt's outcome, unless another claimer took the row over after our lease ran out. */
  async function settle(
    row: WebhookDeliveryRow,
    set: {
      status: WebhookDeliveryRow['status'];
      attempts: number;
      next_attempt_at: Date;
      last_error: string | null;
    },
  ) {
    await db
      .updateTable('webhook_deliveries')
      .set(set)
      .where('id', '=', row.id)
      .where('status', '=', 'pending')
      .where('attempts', '=', row.attempts)
      .execute();
  }

  async function deliver(row: WebhookDeliveryRow): Promise<void> {
    const hook = hooks.get(row.webhook);
    if (!hook) return;
    const n = row.payload as unknown as Notification;
    const createdAt = new Date(row.created_at);
    const body = JSON.stringify(
      hook.format === 'slack' ? slackPayload(n) : jsonPayload(row.id, createdAt, n),
    );
    const timestamp = Math.floor(now().getTime() / 1000);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'sallyport-webhooks/1',
      'x-sallyport-event': row.event,
      'x-sallyport-delivery': row.id,
      'x-sallyport-timestamp': String(timestamp),
    };
    if (hook.secret) headers['x-sallyport-signature'] = signWebhook(hook.secret, timestamp, body);

    const ac = new AbortController();
    inFlight.add(ac);
    const timeout = setTimeout(() => ac.abort(new Error('timeout')), hook.timeoutMs);
    let problem: string | undefined;
    let interrupted = false;
    try {
      const res = await doFetch(hook.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: ac.signal,
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => {});
      } else {
        const text = await res.text().catch(() => '');
        problem = `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
      }
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      interrupted = ac.signal.aborted && ac.signal.reason === SHUTDOWN;
      problem = ac.signal.aborted
        ? `timed out after ${hook.timeoutMs} ms`
        : (e.cause?.code ?? e.cause?.message ?? e.message);
    } finally {
      clearTimeout(timeout);
      inFlight.delete(ac);
    }

    const at = now();
    const ctx = { webhook: hook.name, delivery: row.id, event: row.event };
    if (problem === undefined) {
      await settle(row, {
        status: 'delivered',
        attempts: row.attempts + 1,
        next_attempt_at: at,
        last_error: null,
      });
      log.debug({ ...ctx, attempts: row.attempts + 1 }, 'webhook delivered');
      return;
    }
    if (interrupted) {
      // Not the receiver's fault: hand the row back, due at once, without spending an attempt.
      await settle(row, {
        status: 'pending',
        attempts: row.attempts,
        next_attempt_at: at,
        last_error: 'interrupted: gateway stopped',
      });
      return;
    }
    const attempts = row.attempts + 1;
    if (attempts >= maxAttempts) {
      await settle(row, { status: 'failed', attempts, next_attempt_at: at, last_error: problem });
      log.error({ ...ctx, attempts, lastError: problem }, 'webhook delivery failed for good; giving up');
      return;
    }
    const next = new Date(at.getTime() + retryDelayMs(attempts));
    await settle(row, { status: 'pending', attempts, next_attempt_at: next, last_error: problem });
    log.warn(
      { ...ctx, attempts, error: problem, retryAt: next.toISOString() },
      'webhook delivery failed; will retry',
    );
  }

  async function deliverDue(): Promise<number> {
    const rows = await claim();
    const results = await Promise.allSettled(rows.map((r) => deliver(r)));
    for (const r of results) {
      if (r.status === 'rejected') {
        log.error({ err: (r.reason as Error).message }, 'could not record a webhook delivery attempt');
      }
    }
    return rows.length;
  }

  async function nextDue(): Promise<number> {
    const row = await db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('next_attempt_at').as('t'))
      .where('status', '=', 'pending')
      .where('webhook', 'in', names)
      .executeTakeFirst();
    const limit = now().getTime() + pollMs;
    return row?.t ? Math.min(new Date(row.t as Date).getTime(), limit) : limit;
  }

  async function round() {
    try {
      // A full batch means more may be due: keep going.
      while (!stopped && (await deliverDue()) === batchSize) {}
      if (!stopped) schedule(await nextDue());
    } catch (err) {
      log.error({ err: (err as Error).message }, 'webhook delivery round failed; retrying');
      schedule(now().getTime() + 1000);
    }
  }

  function run() {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = round().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        run();
      }
    });
  }

  function schedule(at: number) {
    if (stopped) return;
    if (timer && at >= wakeAt) return;
    clearTimeout(timer);
    wakeAt = at;
    timer = setTimeout(
      () => {
        timer = undefined;
        wakeAt = Number.POSITIVE_INFINITY;
        run();
      },
      Math.max(0, at - now().getTime()),
    );
  }

  return {
    async enqueue(n) {
      const targets = opts.webhooks.filter((w) => (w.events as string[]).includes(n.event));
      if (targets.length === 0) return;
      const at = now();
      const payload = JSON.stringify(n);
      await db
        .insertInto('webhook_deliveries')
        .values(
          targets.map((w) => ({
            id: randomUUID(),
            webhook: w.name,
            event: n.event,
            payload,
            attempts: 0,
            status: 'pending' as const,
            next_attempt_at: at,
            last_error: null,
            created_at: at,
          })),
        )
        .execute();
      run();
    },
    deliverDue,
    start() {
      if (names.length === 0 || !stopped) return;
      stopped = false;
      run();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      wakeAt = Number.POSITIVE_INFINITY;
      for (const ac of inFlight) ac.abort(SHUTDOWN);
      await running;
    },
  };
}
