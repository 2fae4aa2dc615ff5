import { createHash, randomUUID } from 'node:crypto';
import type { Notification, ReviewView } from '@sallyport/protocol';
import type { Ledger } from '../audit';
import type { AccessConfig } from '../policy';
import type { Store } from '../store/db';
import type { GrantRow, ReviewRow } from '../store/tables';
import { AccessError, type Actor, type Notifier } from './service';

export const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

export function toReviewView(r: ReviewRow): ReviewView {
  return {
    id: r.id,
    kind: r.kind,
    requester: r.requester,
    targetId: r.target_id,
    grantId: r.grant_id,
    sessionId: r.session_id,
    text: r.text,
    sha256: r.sha256,
    rule: r.rule,
    message: r.message,
    details: r.details,
    status: r.status,
    approvers: { users: r.approver_users, groups: r.approver_groups },
    createdAt: iso(r.created_at)!,
    expiresAt: iso(r.expires_at)!,
    decidedBy: r.decided_by,
    decisionReason: r.decision_reason,
    decidedAt: iso(r.decided_at),
  };
}

export interface HoldInput {
  kind: 'sql' | 'command';
  sessionId: string;
  grant: GrantRow;
  requester: Actor;
  /** The exact text that will run if approved. */
  text: string;
  rule: string;
  message: string;
  details: Record<string, unknown>;
}

export type ReviewOutcome =
  | { status: 'approved'; review: ReviewView }
  | { status: 'denied' | 'expired' | 'cancelled'; review: ReviewView };

export type ReviewService = ReturnType<typeof createReviewService>;

/**
 * Statement and command review, shared by the SQL and SSH paths. A session
 * holds the exact text, approvers are notified, and the session waits. An
 * approval binds to the text's SHA-256 and is consumed once: the session runs
 * exactly what was approved, one time.
 */
export function createReviewService(deps: {
  store: Store;
  ledger: Ledger;
  notifier: Notifier;
  config: () => AccessConfig;
  now?: () => Date;
}) {
  const db = deps.store.db;
  const now = deps.now ?? (() => new Date());
  const waiters = new Map<string, { resolve: (o: ReviewOutcome) => void; timer: NodeJS.Timeout }>();

  const settle = (row: ReviewRow) => {
    const w = waiters.get(row.id);
    if (!w) return;
    waiters.delete(row.id);
    clearTimeout(w.timer);
    const review = toReviewView(row);
    w.resolve(
      row.status === 'approved'
        ? { status: 'approved', review }
        : { status: row.status as 'denied' | 'expired' | 'cancelled', review },
    );
  };

  /** The approvers of the rule that granted the session's access; else the configured reviewers. */
  async function approversFor(grant: GrantRow) {
    const req = await db
      .selectFrom('access_requests')
      .select(['rule_name'])
      .where('id', '=', grant.request_id)
      .executeTakeFirst();
    const rule = deps.config().rules.find((r) => r.name === req?.rule_name);
    if (rule && rule.approval !== 'auto') return rule.approval.approvers;
    return deps.config().reviewers;
  }

  async function finishAs(id: string, status: 'expired' | 'cancelled', why: string) {
    const row = await db
      .updateTable('reviews')
      .set({ status, decided_at: now(), decided_by: 'sallyport', decision_reason: why })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .returningAll()
      .executeTakeFirst();
    if (!row) return;
    await deps.ledger.append({
      kind: `review.${status}`,
      actor: 'sallyport',
      actorKind: 'system',
      subject: row.requester,
      targetId: row.target_id,
      data: { reviewId: id, why },
    });
    const review = toReviewView(row);
    deps.notifier.toUser(row.requester, { event: 'review.decided', review });
    settle(row);
  }

  async function decide(
    actor: Actor,
    id: string,
    decision: 'approved' | 'denied',
    reason: string | undefined,
  ): Promise<ReviewView> {
    const refuse = async (status: number, code: string, message: string) => {
      await deps.ledger.append({
        kind: 'access.refused',
        actor: actor.username,
        actorKind: actor.kind,
        data: { code, message, reviewId: id.slice(0, 64), action: `review.${decision}` },
      });
      return new AccessError(status, code, message);
    };
    if (!UUID.test(id)) throw await refuse(404, 'not_found', `no review "${id.slice(0, 64)}"`);
    const current = await db.selectFrom('reviews').selectAll().where('id', '=', id).executeTakeFirst();
    if (!current) throw await refuse(404, 'not_found', `no review "${id}"`);
    if (current.requester === actor.username)
      throw await refuse(403, 'self_approval', 'you cannot decide on your own statement or command');
    const isApprover =
      current.approver_users.includes(actor.username) ||
      current.approver_groups.some((g) => actor.groups.includes(g));
    if (!isApprover) throw await refuse(403, 'not_an_approver', 'you are not an approver for this target');
    const row = await db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('reviews')
        .set({
          status: decision,
          decided_by: actor.username,
          decision_reason: reason ?? null,
          decided_at: now(),
        })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .where('expires_at', '>', now())
        .returningAll()
        .executeTakeFirst();
      if (!updated) return undefined;
      await deps.ledger.append(
        {
          kind: `review.${decision}`,
          actor: actor.username,
          actorKind: actor.kind,
          subject: updated.requester,
          targetId: updated.target_id,
          data: { reviewId: id, kind: updated.kind, sha256: updated.sha256, reason: reason ?? null },
        },
        trx,
      );
      return updated;
    });
    if (!row)
      throw await refuse(
        409,
        `review_${current.status === 'pending' ? 'expired' : current.status}`,
        `this ${current.kind === 'sql' ? 'statement' : 'command'} is no longer waiting (${current.status === 'pending' ? 'expired' : current.status})`,
      );
    const review = toReviewView(row);
    const n: Notification = { event: 'review.decided', review };
    deps.notifier.toUser(row.requester, n);
    await deps.notifier.external(n);
    settle(row);
    return review;
  }

  return {
    /** After a restart no session is waiting any more: pending reviews from before are cancelled. */
    async cancelOrphans(): Promise<number> {
      const rows = await db
        .updateTable('reviews')
        .set({
          status: 'cancelled',
          decided_at: now(),
          decided_by: 'sallyport',
          decision_reason: 'the gateway restarted',
        })
        .where('status', '=', 'pending')
        .returning('id')
        .execute();
      return rows.length;
    },

    /** Holds the text for review; `outcome` settles on approval, denial, expiry or cancel. */
    async hold(input: HoldInput): Promise<{ review: ReviewView; outcome: Promise<ReviewOutcome> }> {
      const approvers = await approversFor(input.grant);
      const at = now();
      const timeoutMs = deps.config().reviewTimeout * 1000;
      const row: ReviewRow = {
        id: randomUUID(),
        kind: input.kind,
        requester: input.requester.username,
        target_id: input.grant.target_id,
        grant_id: input.grant.id,
        session_id: input.sessionId,
        text: input.text,
        sha256: sha256Hex(input.text),
        rule: input.rule,
        message: input.message,
        details: input.details,
        status: 'pending',
        approver_users: approvers.users.filter((u) => u !== input.requester.username),
        approver_groups: approvers.groups,
        created_at: at,
        expires_at: new Date(at.getTime() + timeoutMs),
        decided_by: null,
        decision_reason: null,
        decided_at: null,
        used_at: null,
      };
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('reviews')
          .values({
            ...row,
            details: JSON.stringify(row.details),
            approver_users: JSON.stringify(row.approver_users),
            approver_groups: JSON.stringify(row.approver_groups),
          })
          .execute();
        await deps.ledger.append(
          {
            kind: 'review.requested',
            actor: input.requester.username,
            actorKind: input.requester.kind,
            subject: input.requester.username,
            targetId: row.target_id,
            requestId: input.grant.request_id,
            data: {
              reviewId: row.id,
              kind: row.kind,
              text: row.text,
              sha256: row.sha256,
              rule: row.rule,
              sessionId: row.session_id,
              grantId: row.grant_id,
            },
          },
          trx,
        );
      });
      const review = toReviewView(row);
      const outcome = new Promise<ReviewOutcome>((resolve) => {
        const timer = setTimeout(() => void finishAs(row.id, 'expired', 'nobody decided in time'), timeoutMs);
        timer.unref();
        waiters.set(row.id, { resolve, timer });
      });
      const n: Notification = { event: 'review.pending', review };
      deps.notifier.toApprovers(review.approvers, review.requester, n);
      await deps.notifier.external(n);
      return { review, outcome };
    },

    approve: (actor: Actor, id: string, reason?: string) => decide(actor, id, 'approved', reason),
    deny: (actor: Actor, id: string, reason: string) => decide(actor, id, 'denied', reason),

    /** The waiting session ended: its pending review is void. */
    cancel: (id: string, why: string) => finishAs(id, 'cancelled', why),

    /**
     * Marks an approval used, once, and only for the exact text approved.
     * Returns false if it was already used, is not approved, or the text differs.
     */
    async consume(id: string, text: string, actor: Actor): Promise<boolean> {
      const row = await db
        .updateTable('reviews')
        .set({ status: 'used', used_at: now() })
        .where('id', '=', id)
        .where('status', '=', 'approved')
        .where('sha256', '=', sha256Hex(text))
        .returningAll()
        .executeTakeFirst();
      if (!row) {
        await deps.ledger.append({
          kind: 'access.refused',
          actor: actor.username,
          actorKind: actor.kind,
          data: { code: 'review_not_usable', reviewId: id, sha256: sha256Hex(text) },
        });
        return false;
      }
      await deps.ledger.append({
        kind: 'review.used',
        actor: actor.username,
        actorKind: actor.kind,
        subject: row.requester,
        targetId: row.target_id,
        data: { reviewId: id, sha256: row.sha256 },
      });
      return true;
    },

    async list(
      actor: Actor,
      opts: { scope: 'inbox' | 'mine' | 'all'; status?: ReviewRow['status'] },
    ): Promise<ReviewView[]> {
      let q = db.selectFrom('reviews').selectAll().orderBy('created_at', 'desc').limit(500);
      if (opts.status) q = q.where('status', '=', opts.status);
      if (opts.scope === 'mine') q = q.where('requester', '=', actor.username);
      if (opts.scope === 'all' && !actor.roles.includes('admin'))
        throw new AccessError(403, 'forbidden', 'listing all reviews needs the admin role');
      const rows = await q.execute();
      const visible =
        opts.scope === 'inbox'
          ? rows.filter(
              (r) =>
                r.requester !== actor.username &&
                (r.approver_users.includes(actor.username) ||
                  r.approver_groups.some((g) => actor.groups.includes(g))),
            )
          : rows;
      return visible.map(toReviewView);
    },
  };
}
