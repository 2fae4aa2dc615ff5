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
  /** PEM CA certificate(s) for tls = verify-full; public material, not a secret. */
  tls_ca: string | null;
  /** Hex SHA-256 of tls_ca (UTF-8), written with it. */
  tls_ca_sha256: string | null;
  host_key: string | null;
  labels: Json<Record<string, string>>;
  /** AES-256-GCM envelope (secrets/sealer), bound to the target id. Never selected by list queries. */
  credential_sealed: string | null;
  source: 'config' | 'api' | 'demo';
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
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

export type RequestStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled';
export type GrantStatus = 'active' | 'revoked';

export interface UsersTable {
  username: string;
  subject: string;
  kind: 'user' | 'service';
  groups: Json<string[]>;
  name: string | null;
  email: string | null;
  last_seen: Timestamp;
}

export interface AccessRequestsTable {
  id: string;
  requester: string;
  requester_groups: Json<string[]>;
  target_id: string;
  level: string;
  duration_seconds: number;
  reason: string;
  ticket: string | null;
  rule_name: string;
  status: RequestStatus;
  approvals_required: number;
  approver_users: Json<string[]>;
  approver_groups: Json<string[]>;
  break_glass: boolean;
  extends_grant_id: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  decided_at: Timestamp | null;
  decided_by: string | null;
  decision_reason: string | null;
}

export interface ApprovalsTable {
  request_id: string;
  approver: string;
  decision: 'approve' | 'deny';
  reason: string | null;
  at: Timestamp;
}

export interface GrantsTable {
  id: string;
  request_id: string;
  holder: string;
  target_id: string;
  level: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  status: GrantStatus;
  review_required: boolean;
  warned_at: Timestamp | null;
  revoked_at: Timestamp | null;
  revoked_by: string | null;
  revoke_reason: string | null;
  /** pending → completed, or failed and retried until it completes. */
  revocation_state: 'none' | 'pending' | 'completed' | 'failed';
  revocation_attempts: number;
  next_revocation_attempt_at: Timestamp | null;
  /** A break-glass grant's review after the fact (review_required): who, when, what they found. */
  reviewed_by: ColumnType<string | null, string | null | undefined, string | null>;
  reviewed_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  review_note: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook: string;
  event: string;
  payload: Json<Record<string, unknown>>;
  attempts: number;
  status: 'pending' | 'delivered' | 'failed';
  next_attempt_at: Timestamp;
  last_error: string | null;
  created_at: Timestamp;
}

export interface RecordingsTable {
  session_id: string;
  kind: 'ssh' | 'sql';
  target_id: string;
  grant_id: string | null;
  username: string;
  file: string;
  started_at: Timestamp;
  ended_at: Timestamp | null;
  sha256: string | null;
  bytes: number | null;
  status: 'recording' | 'complete' | 'failed';
}

export interface ReviewsTable {
  id: string;
  kind: 'sql' | 'command';
  requester: string;
  target_id: string;
  grant_id: string;
  session_id: string;
  text: string;
  sha256: string;
  rule: string;
  message: string;
  details: Json<Record<string, unknown>>;
  status: 'pending' | 'approved' | 'denied' | 'expired' | 'used' | 'cancelled';
  approver_users: Json<string[]>;
  approver_groups: Json<string[]>;
  created_at: Timestamp;
  expires_at: Timestamp;
  decided_by: string | null;
  decision_reason: string | null;
  decided_at: Timestamp | null;
  used_at: Timestamp | null;
}

export interface Database {
  reviews: ReviewsTable;
  recordings: RecordingsTable;
  users: UsersTable;
  access_requests: AccessRequestsTable;
  approvals: ApprovalsTable;
  grants: GrantsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  meta: MetaTable;
  targets: TargetsTable;
  audit_events: AuditEventsTable;
}

export type TargetRow = Selectable<TargetsTable>;
export type NewTargetRow = Insertable<TargetsTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
export type AccessRequestRow = Selectable<AccessRequestsTable>;
export type GrantRow = Selectable<GrantsTable>;
export type ApprovalRow = Selectable<ApprovalsTable>;
export type RecordingRow = Selectable<RecordingsTable>;
export type ReviewRow = Selectable<ReviewsTable>;
