import { createHash, randomUUID } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Store } from '../store/db';
import type { AuditEventRow, Database } from '../store/tables';
import { canonicalJson } from './canonical';

export const GENESIS_HASH = '0'.repeat(64);

export type ActorKind = 'user' | 'service' | 'system' | 'anonymous';

export interface AuditEventInput {
  kind: string; // dotted, e.g. 'auth.rejected', 'target.created', 'request.approved'
  actor: string;
  actorKind: ActorKind;
  subject?: string;
  targetId?: string;
  requestId?: string;
  data?: Record<string, unknown>;
}

export interface AuditFilter {
  since?: Date;
  until?: Date;
  kind?: string;
  actor?: string;
  targetId?: string;
  limit?: number;
  afterSeq?: number;
}

export type VerifyResult =
  | { ok: true; count: number; head: string }
  | { ok: false; count: number; seq: number; id: string; problem: string };

export interface Ledger {
  /**
   * Appends one event to the chain. Throws if it cannot be written: callers must fail closed.
   * Inside a transaction, pass it: the event then commits or rolls back with the change it records.
   */
  append(event: AuditEventInput, trx?: Transaction<Database>): Promise<AuditEventRow>;
  /** Appends several events in order, with one lock, one read of the head and one insert. */
  appendMany(events: AuditEventInput[], trx?: Transaction<Database>): Promise<AuditEventRow[]>;
  /**
   * Appends through one queue shared by every caller (group commit): events queued while a write
   * is in flight go together, in queue order, in the next transaction. For high-rate events
   * (statements) whose callers need not wait for a transaction each. A write starts GROUP_WINDOW_MS
   * after the first event of a group, or at once for an event queued with `soon` (someone waits
   * for it). Resolves once committed; rejects when that write failed: the caller must fail closed.
   * `onSeal` is called when a write takes the event, before its data is read: until then the
   * caller may still add to `event.data` (a session's statements share one event per write).
   */
  enqueue(event: AuditEventInput, opts?: { soon?: boolean; onSeal?: () => void }): Promise<AuditEventRow>;
  list(filter?: AuditFilter): Promise<AuditEventRow[]>;
  verify(): Promise<VerifyResult>;
}

/** The fields the hash covers, in canonical form. */
export function eventHash(prevHash: string, row: Omit<AuditEventRow, 'seq' | 'hash' | 'prev_hash'>): string {
  const body = canonicalJson({
    id: row.id,
    at: row.at,
    kind: row.kind,
    actor: row.actor,
    actor_kind: row.actor_kind,
    subject: row.subject,
    target_id: row.target_id,
    request_id: row.request_id,
    data: row.data,
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/** The advisory lock that makes one writer at a time append to the chain. */
export const LEDGER_LOCK = 7365817;

/** Rows per INSERT when appending many events. */
const INSERT_ROWS = 1000;

async function appendIn(trx: Kysely<Database>, e: AuditEventInput): Promise<AuditEventRow> {
  const [row] = await appendAllIn(trx, [e]);
  return row!;
}

async function appendAllIn(trx: Kysely<Database>, events: AuditEventInput[]): Promise<AuditEventRow[]> {
  if (events.length === 0) return [];
  // One writer at a time across all gateway instances sharing the store; held until commit.
  await sql`select pg_advisory_xact_lock(${LEDGER_LOCK})`.execute(trx);
  const last = await trx
    .selectFrom('audit_events')
    .select('hash')
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  let prevHash = last?.hash ?? GENESIS_HASH;
  const at = new Date();
  const rows = events.map((e) => {
    const row = {
      id: randomUUID(),
      at,
      kind: e.kind,
      actor: e.actor,
      actor_kind: e.actorKind,
      subject: e.subject ?? null,
      target_id: e.targetId ?? null,
      request_id: e.requestId ?? null,
      data: e.data ?? {},
    };
    const hash = eventHash(prevHash, row);
    const full = { ...row, data: JSON.stringify(row.data), prev_hash: prevHash, hash };
    prevHash = hash;
    return full;
  });
  // seq is assigned in VALUES order, which is the chain order. Only seq comes back: reading every
  // row back (and parsing its jsonb) doubled the cost of a statement-rate append on PGlite.
  // At most INSERT_ROWS rows per INSERT (11 parameters each; PostgreSQL takes 65,535 at most).
  const seqs: number[] = [];
  for (let i = 0; i < rows.length; i += INSERT_ROWS) {
    const inserted = await trx
      .insertInto('audit_events')
      .values(rows.slice(i, i + INSERT_ROWS))
      .returning('seq')
      .execute();
    seqs.push(...inserted.map((r) => Number(r.seq)).sort((x, y) => x - y));
  }
  return rows.map((r, i) => ({ ...r, seq: seqs[i]!, data: JSON.parse(r.data) as Record<string, unknown> }));
}

/** Most events one group-commit transaction writes. */
const GROUP_MAX = 500;
/**
 * How long a group collects events before its write starts. One transaction costs about as much
 * as a point SELECT through the gateway (on PGlite 1.5-2 ms of CPU, whatever its size), so a write
 * per statement would halve the statement rate; 50 ms of lag turns that into at most 20 writes a
 * second (20 ms gave 0.32 ms of store-thread CPU per point SELECT at concurrency 1, 50 ms 0.22 ms).
 */
const GROUP_WINDOW_MS = 50;

export function createLedger(store: Store): Ledger {
  const { db } = store;
  type Queued = {
    event: AuditEventInput;
    onSeal: (() => void) | undefined;
    resolve(row: AuditEventRow): void;
    reject(err: unknown): void;
  };
  let queue: Queued[] = [];
  let writing = false;
  let timer: NodeJS.Timeout | undefined;
  const pump = (): void => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (writing || queue.length === 0) return;
    writing = true;
    const group = queue.length > GROUP_MAX ? queue.splice(0, GROUP_MAX) : queue;
    if (group === queue) queue = [];
    for (const q of group) q.onSeal?.();
    db.transaction()
      .execute((trx) =>
        appendAllIn(
          trx,
          group.map((q) => q.event),
        ),
      )
      .then(
        (rows) => {
          for (const [i, q] of group.entries()) q.resolve(rows[i]!);
        },
        (err: unknown) => {
          for (const q of group) q.reject(err);
        },
      )
      .finally(() => {
        writing = false;
        if (urgent || queue.length >= GROUP_MAX) pump();
        else if (queue.length > 0) schedule();
      });
    urgent = false;
  };
  let urgent = false;
  const schedule = (): void => {
    timer ??= setTimeout(pump, GROUP_WINDOW_MS);
  };
  return {
    enqueue(event, opts) {
      return new Promise<AuditEventRow>((resolve, reject) => {
        queue.push({ event, onSeal: opts?.onSeal, resolve, reject });
        if (opts?.soon) {
          urgent = true;
          // Let the events of this turn of the event loop join the write.
          if (!writing) setImmediate(pump);
        } else if (!writing) {
          schedule();
        }
      });
    },
    async append(e, outer) {
      if (outer) return appendIn(outer, e);
      return db.transaction().execute((trx) => appendIn(trx, e));
    },
    async appendMany(events, outer) {
      if (outer) return appendAllIn(outer, events);
      return db.transaction().execute((trx) => appendAllIn(trx, events));
    },
    async list(f = {}) {
      let q = db.selectFrom('audit_events').selectAll().orderBy('seq', 'asc');
      if (f.since) q = q.where('at', '>=', f.since);
      if (f.until) q = q.where('at', '<', f.until);
      if (f.kind)
        q = f.kind.endsWith('.*')
          ? q.where('kind', 'like', `${f.kind.slice(0, -1)}%`)
          : q.where('kind', '=', f.kind);
      if (f.actor) q = q.where('actor', '=', f.actor);
      if (f.targetId) q = q.where('target_id', '=', f.targetId);
      if (f.afterSeq !== undefined) q = q.where('seq', '>', f.afterSeq);
      return q.limit(Math.min(f.limit ?? 1000, 10_000)).execute();
    },
    async verify() {
      let prev = GENESIS_HASH;
      let afterSeq = 0;
      let count = 0;
      for (;;) {
        const rows = await db
          .selectFrom('audit_events')
          .selectAll()
          .where('seq', '>', afterSeq)
          .orderBy('seq', 'asc')
          .limit(1000)
          .execute();
        if (rows.length === 0) return { ok: true, count, head: prev };
        for (const row of rows) {
          if (row.prev_hash !== prev) {
            return {
              ok: false,
              count,
              seq: row.seq,
              id: row.id,
              problem: 'prev_hash does not match the previous event (a row was removed or reordered)',
            };
          }
          const expected = eventHash(prev, row);
          if (expected !== row.hash) {
            return {
              ok: false,
              count,
              seq: row.seq,
              id: row.id,
              problem: 'hash does not match the event contents (the row was edited)',
            };
          }
          prev = row.hash;
          afterSeq = row.seq;
          count++;
        }
      }
    },
  };
}
