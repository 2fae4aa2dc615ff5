import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Row types of the store. One definition, used by every repository. */

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export interface MetaTable {
  key: string;
  value: string;
}

export interface TargetsTable {
  id: string;
  kind: 'ssh' | 'postgres';
  name: string;
  description: string | null;
  host: string;
  port: number;
  user_name: string;
  database_name: string | null;
  tls: string | null;
  host_key: string | null;
  labels: Json<Record<string, string>>;
  /** AES-256-GCM envelope (secrets/sealer), bound to the target id. Never selected by list queries. */
  credential_sealed: string | null;
  source: 'config' | 'api' | 'demo';
  created_at: Generated<Timestamp>;
  updated_at: Generated<Timestamp>;
}

export interface AuditEventsTable {
  seq: Generated<number>;
  id: string;
  at: Timestamp;
  kind: string;
  actor: string;
  actor_kind: string;
  subject: string | null;
  target_id: string | null;
  request_id: string | null;
  data: Json<Record<string, unknown>>;
  prev_hash: string;
  hash: string;
}

export interface Database {
  meta: MetaTable;
  targets: TargetsTable;
  audit_events: AuditEventsTable;
}

export type TargetRow = Selectable<TargetsTable>;
export type NewTargetRow = Insertable<TargetsTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
