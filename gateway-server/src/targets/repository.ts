import { createHash } from 'node:crypto';
import type { CredentialInput, TargetInput, TargetView } from '@sallyport/protocol';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Sealer } from '../secrets';
import type { Store } from '../store/db';
import type { Database, TargetRow } from '../store/tables';
import { hostKeyFingerprint } from './host-key';

/** How a CA bundle is named in records and the ledger: hex SHA-256 of its UTF-8 text (migration 0006 agrees). */
export const tlsCaSha256 = (pem: string): string => createHash('sha256').update(pem, 'utf8').digest('hex');

/**
 * Everything about a target except the secret; what the API and policy see. The CA bundle (up to
 * 1 MB) stays out, with its SHA-256 in its place: it is read only where a session connects (tlsCa).
 */
export type TargetRecord = Omit<TargetRow, 'credential_sealed' | 'tls_ca'> & { has_credential: boolean };

/** The secret, unsealed, for the protocol layer only. Never serialised. */
export interface TargetCredential {
  password?: string;
  privateKey?: string;
  passphrase?: string;
}

export class TargetNotFoundError extends Error {
  constructor(readonly targetId: string) {
    super(`no target "${targetId}"`);
    this.name = 'TargetNotFoundError';
  }
}

const publicColumns = [
  'id',
  'kind',
  'name',
  'description',
  'host',
  'port',
  'user_name',
  'database_name',
  'tls',
  'tls_ca_sha256',
  'host_key',
  'labels',
  'source',
  'created_at',
  'updated_at',
] as const;

export function toTargetView(t: TargetRecord, access: TargetView['access'] = { state: 'none' }): TargetView {
  return {
    id: t.id,
    kind: t.kind,
    name: t.name,
    description: t.description,
    host: t.host,
    port: t.port,
    user: t.user_name,
    database: t.database_name,
    labels: t.labels,
    hostKeyFingerprint: t.host_key ? hostKeyFingerprint(t.host_key) : null,
    hasCredential: t.has_credential,
    source: t.source,
    access,
  };
}

export interface TargetRepository {
  /** Inside a transaction, pass it (the start-up sync reads, writes and audits in one). */
  list(trx?: Transaction<Database>): Promise<TargetRecord[]>;
  get(id: string): Promise<TargetRecord | undefined>;
  /** Creates or replaces. A missing credential keeps the stored one (credentials are write-only). */
  upsert(input: TargetInput, source: TargetRow['source']): Promise<TargetRecord>;
  /**
   * upsert() for many targets in one transaction, 500 rows per statement (the start-up sync of
   * config targets: one by one, 5,000 targets took 15–50 s). Same rules: a missing credential keeps
   * the stored one.
   */
  upsertMany(
    inputs: readonly TargetInput[],
    source: TargetRow['source'],
    trx?: Transaction<Database>,
  ): Promise<void>;
  remove(id: string): Promise<boolean>;
  credential(id: string): Promise<TargetCredential | undefined>;
  /** The stored credentials of these targets, unsealed, for comparing in memory (never for output). */
  credentials(ids: readonly string[], trx?: Transaction<Database>): Promise<Map<string, TargetCredential>>;
  /** The PEM bundle a `verify-full` PostgreSQL target's certificate is checked against, if it has one. */
  tlsCa(id: string): Promise<string | undefined>;
}

/** Rows per INSERT in upsertMany (14 parameters each, well under PostgreSQL's 65,535). */
const UPSERT_BATCH = 500;

export function createTargetRepository(store: Store, sealer: Sealer): TargetRepository {
  const { db } = store;
  /** The stored row of a target (credential sealed, bound to the target's id). */
  const rowOf = (input: TargetInput, source: TargetRow['source']) => {
    const sealed = input.credential
      ? sealer.seal(JSON.stringify(pickCredential(input.credential)), `target:${input.id}`)
      : undefined;
    const tlsCa = input.kind === 'postgres' ? (input.tlsCa ?? null) : null;
    const values = {
      id: input.id,
      kind: input.kind,
      name: input.name ?? input.id,
      description: input.description ?? null,
      host: input.host,
      port: input.port,
      user_name: input.user,
      database_name: input.kind === 'postgres' ? input.database : null,
      tls: input.kind === 'postgres' ? input.tls : null,
      tls_ca: tlsCa,
      tls_ca_sha256: tlsCa === null ? null : tlsCaSha256(tlsCa),
      host_key: input.kind === 'ssh' ? input.hostKey : null,
      labels: JSON.stringify(input.labels ?? {}),
      source,
    };
    return { values, sealed };
  };
  /** A stored credential, unsealed: sealed with the target's id as associated data. */
  const openCredential = (id: string, sealed: string) =>
    JSON.parse(sealer.open(sealed, `target:${id}`)) as TargetCredential;
  const withFlag = (
    rows: Array<Omit<TargetRecord, 'has_credential'> & { has_credential: unknown }>,
  ): TargetRecord[] => rows.map((r) => ({ ...r, has_credential: Boolean(r.has_credential) }));
  const selectPublic = (on: Kysely<Database> = db) =>
    on
      .selectFrom('targets')
      .select(publicColumns)
      .select((eb) => eb('credential_sealed', 'is not', null).as('has_credential'));

  return {
    async list(trx) {
      return withFlag(await selectPublic(trx).orderBy('id').execute());
    },
    async get(id) {
      const row = await selectPublic().where('id', '=', id).executeTakeFirst();
      return row ? withFlag([row])[0] : undefined;
    },
    async upsertMany(inputs, source, outer) {
      const rows = inputs.map((input) => {
        const { values, sealed } = rowOf(input, source);
        return { ...values, credential_sealed: sealed ?? null };
      });
      const inTransaction = (fn: (trx: Transaction<Database>) => Promise<void>) =>
        outer ? fn(outer) : db.transaction().execute(fn);
      await inTransaction(async (trx) => {
        for (let i = 0; i < rows.length; i += UPSERT_BATCH) {
          await trx
            .insertInto('targets')
            .values(rows.slice(i, i + UPSERT_BATCH))
            .onConflict((oc) =>
              oc.column('id').doUpdateSet((eb) => ({
                kind: eb.ref('excluded.kind'),
                name: eb.ref('excluded.name'),
                description: eb.ref('excluded.description'),
                host: eb.ref('excluded.host'),
                port: eb.ref('excluded.port'),
                user_name: eb.ref('excluded.user_name'),
                database_name: eb.ref('excluded.database_name'),
                tls: eb.ref('excluded.tls'),
                tls_ca: eb.ref('excluded.tls_ca'),
                tls_ca_sha256: eb.ref('excluded.tls_ca_sha256'),
                host_key: eb.ref('excluded.host_key'),
                labels: eb.ref('excluded.labels'),
                source: eb.ref('excluded.source'),
                // Credentials are write-only: a target given without one keeps the stored one.
                credential_sealed: sql<
                  string | null
                >`coalesce(excluded.credential_sealed, targets.credential_sealed)`,
                updated_at: new Date(),
              })),
            )
            .execute();
        }
      });
    },
    async upsert(input, source) {
      const { values, sealed } = rowOf(input, source);
      await db
        .insertInto('targets')
        .values({ ...values, credential_sealed: sealed ?? null })
        .onConflict((oc) =>
          oc.column('id').doUpdateSet({
            ...values,
            ...(sealed !== undefined ? { credential_sealed: sealed } : {}),
            updated_at: new Date(),
          }),
        )
        .execute();
      const saved = await this.get(input.id);
      if (!saved) throw new Error(`target ${input.id} vanished after upsert`);
      return saved;
    },
    async remove(id) {
      const r = await db.deleteFrom('targets').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },
    async credential(id) {
      const row = await db
        .selectFrom('targets')
        .select('credential_sealed')
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new TargetNotFoundError(id);
      if (!row.credential_sealed) return undefined;
      return openCredential(id, row.credential_sealed);
    },
    async credentials(ids, trx) {
      const out = new Map<string, TargetCredential>();
      if (ids.length === 0) return out;
      const rows = await (trx ?? db)
        .selectFrom('targets')
        .select(['id', 'credential_sealed'])
        .where('id', 'in', [...ids])
        .where('credential_sealed', 'is not', null)
        .execute();
      for (const r of rows) out.set(r.id, openCredential(r.id, r.credential_sealed!));
      return out;
    },
    async tlsCa(id) {
      const row = await db.selectFrom('targets').select('tls_ca').where('id', '=', id).executeTakeFirst();
      if (!row) throw new TargetNotFoundError(id);
      return row.tls_ca ?? undefined;
    },
  };
}

export function pickCredential(c: CredentialInput): TargetCredential {
  const out: TargetCredential = {};
  if (c.password !== undefined) out.password = c.password;
  if (c.privateKey !== undefined) out.privateKey = c.privateKey;
  if (c.passphrase !== undefined) out.passphrase = c.passphrase;
  return out;
}
