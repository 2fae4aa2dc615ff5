import { randomUUID } from 'node:crypto';
import {
  ABSOLUTE_MAX_DURATION_SECONDS,
  type AccessLevel,
  type CreateAccessRequest,
  type GrantView,
  type Notification,
  type RequestOutcome,
  type RequestView,
} from '@sallyport/protocol';
import type { Transaction } from 'kysely';
import type { Ledger } from '../audit';
import { type AccessConfig, decide, mayApprove, parseDuration, principalMatches } from '../policy';
import type { Store } from '../store/db';
import type { AccessRequestRow, Database, GrantRow } from '../store/tables';
import type { TargetRepository } from '../targets/repository';
import type { SessionRegistry } from './sessions';
import { toGrantView, toRequestView } from './views';

/** Who is acting: the API's caller, reduced to what the lifecycle needs. */
export interface Actor {
  username: string;
  subject: string;
  kind: 'user' | 'service';
  groups: string[];
  roles: string[];
  name?: string | undefined;
  email?: string | undefined;
}

export const SYSTEM: Actor = {
  username: 'sallyport',
  subject: 'system',
  kind: 'service',
  groups: [],
  roles: ['admin'],
};
/** The actor of decisions the policy makes by itself (auto-approval). */
export const POLICY: Actor = {
  username: 'policy',
  subject: 'system',
  kind: 'service',
  groups: [],
  roles: [],
};

/** Ledger actor kind: the gateway's own actors are `system`. */
export const actorKindOf = (a: Actor) => (a.subject === 'system' ? 'system' : a.kind);

/** A refusal with a stable code. Every one is audited before it is thrown. */
export class AccessError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AccessError';
  }
}

export interface Notifier {
  toUser(username: string, n: Notification): void;
  toApprovers(approvers: { users: string[]; groups: string[] }, exclude: string, n: Notification): void;
  /** Durable delivery to configured webhooks (outbox). */
  external(n: Notification): Promise<void>;
}

export const silentNotifier: Notifier = { toUser() {}, toApprovers() {}, external: async () => {} };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface AccessServiceDeps {
  store: Store;
  ledger: Ledger;
  targets: TargetRepository;
  config: () => AccessConfig;
  sessions: SessionRegistry;
  notifier: Notifier;
  now?: () => Date;
  /** Wakes the expiry scheduler when something new becomes due. */
  onDue?: (at: Date) => void;
}

export type AccessService = ReturnType<typeof createAccessService>;

export function createAccessService(deps: AccessServiceDeps) {
  const { store, ledger, targets } = deps;
  const db = store.db;
  const now = deps.now ?? (() => new Date());

  const refuse = async (
    actor: Actor,
    status: number,
    code: string,
    message: string,
    data: Record<string, unknown> = {},
  ) => {
    await ledger.append({
      kind: 'access.refused',
      actor: actor.username,
      actorKind: actor.kind,
      ...(typeof data.targetId === 'string' ? { targetId: data.targetId } : {}),
      ...(typeof data.requestId === 'string' ? { requestId: data.requestId } : {}),
      data: { code, message, ...data },
    });
    return new AccessError(status, code, message);
  };

  async function approvalsOf(ids: string[], q: Transaction<Database> | typeof db = db) {
    if (ids.length === 0) return new Map<string, Awaited<ReturnType<typeof loadApprovals>>>();
    const rows = await loadApprovals(ids, q);
    const by = new Map<string, typeof rows>();
    for (const r of rows) by.set(r.request_id, [...(by.get(r.request_id) ?? []), r]);
    return by;
  }
  function loadApprovals(ids: string[], q: Transaction<Database> | typeof db) {
    return q.selectFrom('approvals').selectAll().where('request_id', 'in', ids).orderBy('at').execute();
  }
  async function viewsOf(
    rows: AccessRequestRow[],
    q: Transaction<Database> | typeof db = db,
  ): Promise<RequestView[]> {
    const ids = rows.map((r) => r.id);
    const approvals = await approvalsOf(ids, q);
    const grants = ids.length
      ? await q.selectFrom('grants').select(['id', 'request_id']).where('request_id', 'in', ids).execute()
      : [];
    const grantOf = new Map(grants.map((g) => [g.request_id, g.id]));
    // An extension's grant is the one it extends.
    return rows.map((r) =>
      toRequestView(
        r,
        approvals.get(r.id) ?? [],
        grantOf.get(r.id) ?? (r.status === 'approved' ? r.extends_grant_id : null),
      ),
    );
  }
  const viewOf = async (r: AccessRequestRow, q: Transaction<Database> | typeof db = db) =>
    (await viewsOf([r], q))[0]!;

  /** Mints the grant for an approved request (or extends the grant it extends), inside the caller's transaction. */
  async function grantFor(
    trx: Transaction<Database>,
    r: AccessRequestRow,
    actor: Actor,
    reviewRequired: boolean,
  ): Promise<GrantRow> {
    const at = now();
    if (r.extends_grant_id) {
      const g = await trx
        .selectFrom('grants')
        .selectAll()
        .where('id', '=', r.extends_grant_id)
        .forUpdate()
        .executeTakeFirst();
      if (g?.status !== 'active' || new Date(g.expires_at) <= at) {
        throw new AccessError(
          409,
          'grant_not_active',
          'the grant this request extends is no longer active: request new access instead',
        );
      }
      const expires = new Date(new Date(g.expires_at).getTime() + r.duration_seconds * 1000);
      const updated = await trx
        .updateTable('grants')
        .set({ expires_at: expires, warned_at: null })
        .where('id', '=', g.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await ledger.append(
        {
          kind: 'grant.extended',
          actor: actor.username,
          actorKind: actor.kind,
          subject: g.holder,
          targetId: g.target_id,
          requestId: r.id,
          data: {
            grantId: g.id,
            level: g.level,
            previousExpiresAt: new Date(g.expires_at).toISOString(),
            expiresAt: expires.toISOString(),
          },
        },
        trx,
      );
      deps.onDue?.(expires);
      return updated;
    }
    const expires = new Date(at.getTime() + r.duration_seconds * 1000);
    const grant = await trx
      .insertInto('grants')
      .values({
        id: randomUUID(),
        request_id: r.id,
        holder: r.requester,
        target_id: r.target_id,
        level: r.level,
        created_at: at,
        expires_at: expires,
        status: 'active',
        review_required: reviewRequired,
        revocation_state: 'none',
        revocation_attempts: 0,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await ledger.append(
      {
        kind: reviewRequired ? 'grant.break_glass' : 'grant.issued',
        actor: actor.username,
        actorKind: actorKindOf(actor),
        subject: r.requester,
        targetId: r.target_id,
        requestId: r.id,
        data: { grantId: grant.id, level: r.level, expiresAt: expires.toISOString(), reviewRequired },
      },
      trx,
    );
    deps.onDue?.(expires);
    return grant;
  }

  async function loadRequestFor(actor: Actor, id: string, action: string): Promise<AccessRequestRow> {
    if (!UUID.test(id))
      throw await refuse(actor, 404, 'not_found', `no request "${id.slice(0, 64)}"`, {
        action,
        requestIdGiven: id.slice(0, 64),
      });
    const r = await db.selectFrom('access_requests').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw await refuse(actor, 404, 'not_found', `no request "${id}"`, { action, requestIdGiven: id });
    return r;
  }

  const isAdmin = (a: Actor) => a.roles.includes('admin');

  /** A grant by id; undefined for an unknown id or one that is not a UUID (nothing is looked up). */
  const grantById = async (id: string): Promise<GrantRow | undefined> =>
    UUID.test(id) ? db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst() : undefined;

  /**
   * Who may review a break-glass grant: the approvers saved on its request when it was taken (the
   * rule's, whatever the config says now) or, for a rule without approvers, the approver groups of
   * every rule. request() tells the same people when the grant is taken.
   */
  const approversToTell = (
    r: Pick<AccessRequestRow, 'approver_users' | 'approver_groups'>,
  ): { users: string[]; groups: string[] } => {
    if (r.approver_users.length > 0 || r.approver_groups.length > 0)
      return { users: r.approver_users, groups: r.approver_groups };
    return {
      users: [],
      groups: deps.config().rules.flatMap((x) => (x.approval === 'auto' ? [] : x.approval.approvers.groups)),
    };
  };
  const mayReviewBreakGlass = (actor: Actor, r: AccessRequestRow) =>
    actor.username !== r.requester &&
    (isAdmin(actor) ||
      principalMatches(approversToTell(r), { username: actor.username, groups: actor.groups }));

  return {
    /** Remembers who has signed in, with their groups, so approvers can be listed and explained. */
    async recordUser(a: Actor) {
      await db
        .insertInto('users')
        .values({
          username: a.username,
          subject: a.subject,
          kind: a.kind,
          groups: JSON.stringify(a.groups),
          name: a.name ?? null,
          email: a.email ?? null,
          last_seen: now(),
        })
        .onConflict((oc) =>
          oc.column('username').doUpdateSet({
            subject: a.subject,
            kind: a.kind,
            groups: JSON.stringify(a.groups),
            name: a.name ?? null,
            email: a.email ?? null,
            last_seen: now(),
          }),
        )
        .execute();
    },

    async knownUser(username: string) {
      return db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    },

    async request(actor: Actor, input: CreateAccessRequest): Promise<RequestOutcome> {
      const durationSeconds =
        typeof input.duration === 'number' ? input.duration : parseDuration(input.duration);
      const ctx = { targetId: input.targetId, level: input.level };
      if (durationSeconds === undefined || !Number.isSafeInteger(durationSeconds)) {
        throw await refuse(
          actor,
          400,
          'invalid_duration',
          `"${String(input.duration).slice(0, 32)}" is not a duration: give seconds or text like 30m, 2h`,
          ctx,
        );
      }
      if (durationSeconds <= 0)
        throw await refuse(actor, 400, 'invalid_duration', 'the duration must be positive', {
          ...ctx,
          durationSeconds,
        });
      if (durationSeconds > ABSOLUTE_MAX_DURATION_SECONDS) {
        throw await refuse(
          actor,
          400,
          'invalid_duration',
          `a duration of ${durationSeconds} s is beyond any grant Sallyport issues`,
          { ...ctx, durationSeconds },
        );
      }
      const target = await targets.get(input.targetId);
      if (!target) throw await refuse(actor, 404, 'unknown_target', `no target "${input.targetId}"`, ctx);

      let extended: GrantRow | undefined;
      if (input.extendsGrantId) {
        extended = await db
          .selectFrom('grants')
          .selectAll()
          .where('id', '=', input.extendsGrantId)
          .executeTakeFirst();
        if (!extended || extended.holder !== actor.username) {
          throw await refuse(
            actor,
            404,
            'not_found',
            `no grant "${input.extendsGrantId}" of yours to extend`,
            ctx,
          );
        }
        if (extended.status !== 'active' || new Date(extended.expires_at) <= now()) {
          throw await refuse(
            actor,
            409,
            'grant_not_active',
            'that grant is no longer active: request new access instead',
            ctx,
          );
        }
        if (extended.target_id !== input.targetId || extended.level !== input.level) {
          throw await refuse(
            actor,
            400,
            'extension_mismatch',
            `grant ${extended.id} is for ${extended.target_id} at ${extended.level}`,
            ctx,
          );
        }
      }

      const decision = decide(deps.config(), { username: actor.username, groups: actor.groups }, target, {
        level: input.level,
        durationSeconds,
        ticket: input.ticket,
        breakGlass: input.breakGlass,
      });
      if (decision.outcome === 'refused') {
        throw await refuse(actor, 403, decision.code, decision.message, {
          ...ctx,
          durationSeconds,
          reason: input.reason,
        });
      }

      const at = now();
      const approval = decision.outcome === 'approval' ? decision : undefined;
      const row: AccessRequestRow = {
        id: randomUUID(),
        requester: actor.username,
        requester_groups: actor.groups,
        target_id: target.id,
        level: input.level,
        duration_seconds: durationSeconds,
        reason: input.reason,
        ticket: input.ticket ?? null,
        rule_name: decision.rule.name,
        status: approval ? 'pending' : 'approved',
        approvals_required: approval?.count ?? 0,
        approver_users:
          approval?.approvers.users ??
          (decision.rule.approval === 'auto' ? [] : decision.rule.approval.approvers.users),
        approver_groups:
          approval?.approvers.groups ??
          (decision.rule.approval === 'auto' ? [] : decision.rule.approval.approvers.groups),
        break_glass: decision.outcome === 'break-glass',
        extends_grant_id: extended?.id ?? null,
        created_at: at,
        expires_at: new Date(at.getTime() + (approval?.pendingTimeoutSeconds ?? 0) * 1000),
        decided_at: approval ? null : at,
        decided_by: approval ? null : decision.outcome === 'auto' ? 'policy' : actor.username,
        decision_reason: approval
          ? null
          : decision.outcome === 'auto'
            ? `auto-approved by rule ${decision.rule.name}`
            : 'break-glass',
      };

      const result = await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('access_requests')
          .values({
            ...row,
            requester_groups: JSON.stringify(row.requester_groups),
            approver_users: JSON.stringify(row.approver_users),
            approver_groups: JSON.stringify(row.approver_groups),
          })
          .execute();
        await ledger.append(
          {
            kind: 'request.created',
            actor: actor.username,
            actorKind: actor.kind,
            subject: actor.username,
            targetId: target.id,
            requestId: row.id,
            data: {
              level: row.level,
              durationSeconds,
              reason: row.reason,
              ticket: row.ticket,
              rule: row.rule_name,
              outcome: decision.outcome,
              breakGlass: row.break_glass,
              extendsGrantId: row.extends_grant_id,
            },
          },
          trx,
        );
        if (approval) return { grant: undefined };
        await ledger.append(
          {
            kind: 'request.approved',
            actor: row.decided_by!,
            actorKind: decision.outcome === 'auto' ? 'system' : actor.kind,
            subject: actor.username,
            targetId: target.id,
            requestId: row.id,
            data: { by: decision.outcome === 'auto' ? 'policy' : 'break-glass', rule: row.rule_name },
          },
          trx,
        );
        return {
          grant: await grantFor(
            trx,
            row,
            decision.outcome === 'auto' ? POLICY : actor,
            decision.outcome === 'break-glass',
          ),
        };
      });

      const request = await viewOf(row);
      if (approval) {
        deps.onDue?.(row.expires_at as Date);
        const n: Notification = { event: 'request.pending', request };
        deps.notifier.toApprovers(approval.approvers, actor.username, n);
        await deps.notifier.external(n);
        return { outcome: 'pending', request };
      }
      const grant = toGrantView(result.grant!);
      if (decision.outcome === 'break-glass') {
        const n: Notification = { event: 'grant.break_glass', request, grant };
        // The people who may review it afterwards (reviewBreakGlass) are the people told now.
        deps.notifier.toApprovers(approversToTell(row), actor.username, n);
        await deps.notifier.external(n);
      }
      return { outcome: 'granted', request, grant };
    },

    async approve(
      actor: Actor,
      id: string,
      reason?: string,
    ): Promise<{ request: RequestView; grant?: GrantView }> {
      const existing = await loadRequestFor(actor, id, 'approve');
      const rule = deps.config().rules.find((r) => r.name === existing.rule_name);
      const ctx = { requestId: id, targetId: existing.target_id };
      if (!rule)
        throw await refuse(
          actor,
          409,
          'rule_gone',
          `the rule "${existing.rule_name}" no longer exists; the request cannot be approved`,
          ctx,
        );
      const may = mayApprove(rule, { username: actor.username, groups: actor.groups }, existing.requester);
      if (!may.ok) throw await refuse(actor, 403, may.code, may.message, ctx);

      const outcome = await db.transaction().execute(async (trx) => {
        // Row lock: concurrent approvals queue here, so exactly one of them can mint the grant.
        const r = await trx
          .selectFrom('access_requests')
          .selectAll()
          .where('id', '=', id)
          .forUpdate()
          .executeTakeFirstOrThrow();
        if (r.status === 'pending' && new Date(r.expires_at) <= now()) {
          return {
            refused: {
              status: 409,
              code: 'request_expired',
              message: 'this request expired before it was approved',
            },
          };
        }
        if (r.status !== 'pending') {
          return {
            refused: {
              status: 409,
              code: `request_${r.status}`,
              message: `this request is ${r.status}; it cannot be approved`,
            },
          };
        }
        const inserted = await trx
          .insertInto('approvals')
          .values({
            request_id: id,
            approver: actor.username,
            decision: 'approve',
            reason: reason ?? null,
            at: now(),
          })
          .onConflict((oc) => oc.columns(['request_id', 'approver']).doNothing())
          .returning('approver')
          .executeTakeFirst();
        if (!inserted)
          return {
            refused: {
              status: 409,
              code: 'already_approved',
              message: 'you have already approved this request',
            },
          };
        const count = await trx
          .selectFrom('approvals')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('request_id', '=', id)
          .where('decision', '=', 'approve')
          .executeTakeFirstOrThrow();
        const approvals = Number(count.n);
        await ledger.append(
          {
            kind: 'request.approval',
            actor: actor.username,
            actorKind: actor.kind,
            subject: r.requester,
            targetId: r.target_id,
            requestId: id,
            data: { reason: reason ?? null, approvals, required: r.approvals_required },
          },
          trx,
        );
        if (approvals < r.approvals_required) return { request: r };
        const decided = await trx
          .updateTable('access_requests')
          .set({
            status: 'approved',
            decided_at: now(),
            decided_by: actor.username,
            decision_reason: reason ?? null,
          })
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await ledger.append(
          {
            kind: 'request.approved',
            actor: actor.username,
            actorKind: actor.kind,
            subject: r.requester,
            targetId: r.target_id,
            requestId: id,
            data: { approvals, rule: r.rule_name },
          },
          trx,
        );
        const grant = await grantFor(trx, decided, actor, false);
        return { request: decided, grant };
      });
      if ('refused' in outcome && outcome.refused) {
        throw await refuse(actor, outcome.refused.status, outcome.refused.code, outcome.refused.message, ctx);
      }
      const request = await viewOf(outcome.request!);
      if (!outcome.grant) return { request };
      const grant = toGrantView(outcome.grant);
      const n: Notification = { event: 'request.decided', request, grant };
      deps.notifier.toUser(request.requester, n);
      await deps.notifier.external(n);
      return { request, grant };
    },

    async deny(actor: Actor, id: string, reason: string): Promise<RequestView> {
      const existing = await loadRequestFor(actor, id, 'deny');
      const ctx = { requestId: id, targetId: existing.target_id };
      const rule = deps.config().rules.find((r) => r.name === existing.rule_name);
      if (rule) {
        const may = mayApprove(rule, { username: actor.username, groups: actor.groups }, existing.requester);
        if (!may.ok)
          throw await refuse(
            actor,
            403,
            may.code === 'self_approval' ? 'self_decision' : may.code,
            may.code === 'self_approval' ? 'cancel your own request instead of denying it' : may.message,
            ctx,
          );
      } else if (!isAdmin(actor)) {
        throw await refuse(
          actor,
          403,
          'not_an_approver',
          'only an admin can decide on a request whose rule is gone',
          ctx,
        );
      }
      const out = await db.transaction().execute(async (trx) => {
        const r = await trx
          .selectFrom('access_requests')
          .selectAll()
          .where('id', '=', id)
          .forUpdate()
          .executeTakeFirstOrThrow();
        if (r.status !== 'pending')
          return { refused: `this request is ${r.status}; it cannot be denied`, request: undefined } as const;
        await trx
          .insertInto('approvals')
          .values({ request_id: id, approver: actor.username, decision: 'deny', reason, at: now() })
          .onConflict((oc) =>
            oc.columns(['request_id', 'approver']).doUpdateSet({ decision: 'deny', reason, at: now() }),
          )
          .execute();
        const decided = await trx
          .updateTable('access_requests')
          .set({ status: 'denied', decided_at: now(), decided_by: actor.username, decision_reason: reason })
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await ledger.append(
          {
            kind: 'request.denied',
            actor: actor.username,
            actorKind: actor.kind,
            subject: r.requester,
            targetId: r.target_id,
            requestId: id,
            data: { reason },
          },
          trx,
        );
        return { refused: undefined, request: decided } as const;
      });
      if (out.refused !== undefined) throw await refuse(actor, 409, 'not_pending', out.refused, ctx);
      const request = await viewOf(out.request);
      const n: Notification = { event: 'request.decided', request };
      deps.notifier.toUser(request.requester, n);
      await deps.notifier.external(n);
      return request;
    },

    async cancel(actor: Actor, id: string): Promise<RequestView> {
      const existing = await loadRequestFor(actor, id, 'cancel');
      const ctx = { requestId: id, targetId: existing.target_id };
      if (existing.requester !== actor.username && !isAdmin(actor))
        throw await refuse(
          actor,
          403,
          'forbidden',
          'only the requester or an admin can cancel a request',
          ctx,
        );
      const r = await db.transaction().execute(async (trx) => {
        const cur = await trx
          .selectFrom('access_requests')
          .selectAll()
          .where('id', '=', id)
          .forUpdate()
          .executeTakeFirstOrThrow();
        if (cur.status !== 'pending') return undefined;
        const done = await trx
          .updateTable('access_requests')
          .set({ status: 'cancelled', decided_at: now(), decided_by: actor.username })
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await ledger.append(
          {
            kind: 'request.cancelled',
            actor: actor.username,
            actorKind: actor.kind,
            subject: cur.requester,
            targetId: cur.target_id,
            requestId: id,
          },
          trx,
        );
        return done;
      });
      if (!r)
        throw await refuse(
          actor,
          409,
          'not_pending',
          `this request is ${existing.status}; only pending requests can be cancelled`,
          ctx,
        );
      const view = await viewOf(r);
      // The requester's other sockets (app, a CLI --wait) and the approvers' inboxes learn it at once.
      const n: Notification = { event: 'request.decided', request: view };
      deps.notifier.toUser(view.requester, n);
      deps.notifier.toApprovers(view.approvers, view.requester, n);
      return view;
    },

    async getRequest(actor: Actor, id: string): Promise<RequestView> {
      const r = await loadRequestFor(actor, id, 'read');
      const canSee =
        r.requester === actor.username ||
        isAdmin(actor) ||
        r.approver_users.includes(actor.username) ||
        r.approver_groups.some((g) => actor.groups.includes(g));
      if (!canSee) throw await refuse(actor, 404, 'not_found', `no request "${id}"`, { requestId: id });
      return viewOf(r);
    },

    async listRequests(
      actor: Actor,
      opts: { scope: 'mine' | 'inbox' | 'all'; status?: string; limit?: number },
    ): Promise<RequestView[]> {
      let q = db
        .selectFrom('access_requests')
        .selectAll()
        .orderBy('created_at', 'desc')
        .limit(Math.min(opts.limit ?? 200, 1000));
      if (opts.status) q = q.where('status', '=', opts.status as AccessRequestRow['status']);
      if (opts.scope === 'mine') q = q.where('requester', '=', actor.username);
      if (opts.scope === 'all' && !isAdmin(actor))
        throw new AccessError(403, 'forbidden', 'listing all requests needs the admin role');
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
      return viewsOf(visible);
    },

    async listGrants(
      actor: Actor,
      opts: { scope: 'mine' | 'all'; status?: 'active' | 'revoked' },
    ): Promise<GrantView[]> {
      let q = db.selectFrom('grants').selectAll().orderBy('created_at', 'desc').limit(500);
      if (opts.scope === 'mine') q = q.where('holder', '=', actor.username);
      else if (!isAdmin(actor))
        throw new AccessError(403, 'forbidden', 'listing all grants needs the admin role');
      if (opts.status) q = q.where('status', '=', opts.status);
      // A break-glass review's note is for approvers and admins, not the holder.
      return (await q.execute()).map((g) => {
        const v = toGrantView(g);
        return isAdmin(actor) ? v : { ...v, reviewNote: null };
      });
    },

    /** The grant a session may run under: active, unexpired, the holder's, for this target (and level, if given). */
    async usableGrant(
      username: string,
      targetId: string,
      grantId?: string,
      level?: AccessLevel,
    ): Promise<GrantRow | undefined> {
      let q = db
        .selectFrom('grants')
        .selectAll()
        .where('holder', '=', username)
        .where('target_id', '=', targetId)
        .where('status', '=', 'active')
        .where('expires_at', '>', now())
        .orderBy('expires_at', 'desc');
      if (grantId) q = q.where('id', '=', grantId);
      if (level) q = q.where('level', '=', level);
      return q.executeTakeFirst();
    },

    /** For a session layer: checks a grant at use time, auditing misuse of a revoked or foreign grant. */
    async checkGrantForUse(actor: Actor, grantId: string, targetId: string): Promise<GrantRow> {
      const g = await grantById(grantId);
      const ctx = { targetId, grantId: grantId.slice(0, 64) };
      if (!g || g.holder !== actor.username || g.target_id !== targetId)
        throw await refuse(actor, 403, 'no_grant', `no grant of yours for ${targetId}`, ctx);
      if (g.status === 'revoked')
        throw await refuse(
          actor,
          403,
          'grant_revoked',
          `this grant was revoked${g.revoke_reason ? `: ${g.revoke_reason}` : ''}`,
          ctx,
        );
      if (new Date(g.expires_at) <= now())
        throw await refuse(actor, 403, 'grant_expired', 'this grant has expired', ctx);
      return g;
    },

    /** Access state per target for the targets list. */
    async accessStates(
      username: string,
    ): Promise<
      Map<
        string,
        { state: 'pending' | 'active' | 'expiring'; expiresAt?: string; requestId?: string; grantId?: string }
      >
    > {
      const out = new Map<
        string,
        { state: 'pending' | 'active' | 'expiring'; expiresAt?: string; requestId?: string; grantId?: string }
      >();
      const t = now();
      const pending = await db
        .selectFrom('access_requests')
        .select(['id', 'target_id'])
        .where('requester', '=', username)
        .where('status', '=', 'pending')
        .where('expires_at', '>', t)
        .execute();
      for (const p of pending) out.set(p.target_id, { state: 'pending', requestId: p.id });
      const grants = await db
        .selectFrom('grants')
        .select(['id', 'target_id', 'expires_at'])
        .where('holder', '=', username)
        .where('status', '=', 'active')
        .where('expires_at', '>', t)
        .orderBy('expires_at', 'asc')
        .execute();
      const warn = deps.config().expiryWarning * 1000;
      for (const g of grants) {
        const exp = new Date(g.expires_at);
        out.set(g.target_id, {
          state: exp.getTime() - t.getTime() <= warn ? 'expiring' : 'active',
          expiresAt: exp.toISOString(),
          grantId: g.id,
        });
      }
      return out;
    },

    /**
     * Break-glass grants not yet reviewed that `actor` may review, newest first: those under a rule
     * whose approvers include them (for a rule without approvers, any approver's), or all for an
     * admin; never their own.
     */
    async breakGlassToReview(actor: Actor): Promise<Array<{ grant: GrantView; request: RequestView }>> {
      const rows = await db
        .selectFrom('grants')
        .selectAll()
        .where('review_required', '=', true)
        .where('reviewed_at', 'is', null)
        .where('holder', '!=', actor.username)
        .orderBy('created_at', 'desc')
        .limit(5000)
        .execute();
      if (rows.length === 0) return [];
      const requests = await db
        .selectFrom('access_requests')
        .selectAll()
        .where(
          'id',
          'in',
          rows.map((g) => g.request_id),
        )
        .execute();
      const byId = new Map(requests.map((r) => [r.id, r]));
      const mine = rows.filter((g) => {
        const r = byId.get(g.request_id);
        return r !== undefined && mayReviewBreakGlass(actor, r);
      });
      const views = await viewsOf(mine.map((g) => byId.get(g.request_id)!));
      return mine.map((g, i) => ({ grant: toGrantView(g), request: views[i]! }));
    },

    /** Marks a break-glass grant reviewed, once, with what the reviewer found; in the ledger. */
    async reviewBreakGlass(actor: Actor, grantId: string, note: string): Promise<GrantView> {
      const g = await grantById(grantId);
      const ctx = {
        action: 'review-grant',
        grantId: grantId.slice(0, 64),
        ...(g ? { targetId: g.target_id } : {}),
      };
      if (!g) throw await refuse(actor, 404, 'not_found', `no grant "${grantId.slice(0, 64)}"`, ctx);
      if (!g.review_required)
        throw await refuse(
          actor,
          409,
          'not_break_glass',
          'this grant was approved, not taken by break-glass: there is nothing to review',
          ctx,
        );
      if (g.holder === actor.username)
        throw await refuse(
          actor,
          403,
          'self_review',
          'someone else must review your break-glass access',
          ctx,
        );
      const request = await db
        .selectFrom('access_requests')
        .selectAll()
        .where('id', '=', g.request_id)
        .executeTakeFirstOrThrow();
      if (!mayReviewBreakGlass(actor, request))
        throw await refuse(
          actor,
          403,
          'not_an_approver',
          'only an approver for this target or an admin can review break-glass access',
          ctx,
        );
      const reviewed = await db.transaction().execute(async (trx) => {
        const locked = await trx
          .selectFrom('grants')
          .selectAll()
          .where('id', '=', g.id)
          .forUpdate()
          .executeTakeFirstOrThrow();
        if (locked.reviewed_at !== null) return undefined;
        const row = await trx
          .updateTable('grants')
          .set({ reviewed_by: actor.username, reviewed_at: now(), review_note: note })
          .where('id', '=', g.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await ledger.append(
          {
            kind: 'grant.reviewed',
            actor: actor.username,
            actorKind: actor.kind,
            subject: g.holder,
            targetId: g.target_id,
            requestId: g.request_id,
            data: { grantId: g.id, note },
          },
          trx,
        );
        return row;
      });
      if (!reviewed) {
        const again = await db
          .selectFrom('grants')
          .select(['reviewed_by'])
          .where('id', '=', g.id)
          .executeTakeFirst();
        throw await refuse(
          actor,
          409,
          'already_reviewed',
          `this grant was already reviewed by ${again?.reviewed_by ?? 'someone'}`,
          ctx,
        );
      }
      const view = toGrantView(reviewed);
      const n: Notification = { event: 'grant.reviewed', grant: view };
      deps.notifier.toApprovers(approversToTell(request), g.holder, n);
      // The holder learns who reviewed it; what they found is for approvers and the ledger.
      deps.notifier.toUser(g.holder, { event: 'grant.reviewed', grant: { ...view, reviewNote: null } });
      await deps.notifier.external(n);
      return view;
    },

    /** Early revoke by the holder or an admin. The sessions are closed by the revoker (see revocation.ts). */
    async authorizeRevoke(actor: Actor, grantId: string): Promise<GrantRow> {
      const g = await grantById(grantId);
      if (!g)
        throw await refuse(actor, 404, 'not_found', `no grant "${grantId.slice(0, 64)}"`, {
          grantId: grantId.slice(0, 64),
        });
      if (g.holder !== actor.username && !isAdmin(actor))
        throw await refuse(actor, 403, 'forbidden', 'only the holder or an admin can revoke a grant', {
          grantId,
          targetId: g.target_id,
        });
      if (g.status !== 'active')
        throw await refuse(actor, 409, 'grant_revoked', 'this grant is already revoked', {
          grantId,
          targetId: g.target_id,
        });
      return g;
    },

    viewOf,
  };
}
