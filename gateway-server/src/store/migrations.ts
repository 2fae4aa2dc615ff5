import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';

/**
 * Migrations live in code (not files on disk) so the gateway carries them
 * wherever it runs. Append new ones; never edit one that has shipped.
 */
const migrations: Record<string, Migration> = {
  '0001_foundation': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('targets')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('ssh','postgres')`))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('user_name', 'text', (c) => c.notNull())
        .addColumn('database_name', 'text')
        .addColumn('tls', 'text')
        .addColumn('host_key', 'text')
        .addColumn('labels', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
        .addColumn('credential_sealed', 'text')
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      await db.schema
        .createTable('audit_events')
        .addColumn('seq', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('at', 'timestamptz', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('actor_kind', 'text', (c) => c.notNull())
        .addColumn('subject', 'text')
        .addColumn('target_id', 'text')
        .addColumn('request_id', 'text')
        .addColumn('data', 'jsonb', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_events_at').on('audit_events').column('at').execute();
      await db.schema.createIndex('audit_events_kind').on('audit_events').column('kind').execute();
    },
  },
  '0002_access_lifecycle': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('username', 'text', (c) => c.primaryKey())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('groups', 'jsonb', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('email', 'text')
        .addColumn('last_seen', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('access_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('requester', 'text', (c) => c.notNull())
        .addColumn('requester_groups', 'jsonb', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('level', 'text', (c) => c.notNull())
        .addColumn('duration_seconds', 'integer', (c) => c.notNull().check(sql`duration_seconds > 0`))
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('ticket', 'text')
        .addColumn('rule_name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('approvals_required', 'integer', (c) => c.notNull())
        .addColumn('approver_users', 'jsonb', (c) => c.notNull())
        .addColumn('approver_groups', 'jsonb', (c) => c.notNull())
        .addColumn('break_glass', 'boolean', (c) => c.notNull())
        .addColumn('extends_grant_id', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addColumn('decided_at', 'timestamptz')
        .addColumn('decided_by', 'text')
        .addColumn('decision_reason', 'text')
        .execute();
      await db.schema
        .createIndex('access_requests_status')
        .on('access_requests')
        .columns(['status', 'expires_at'])
        .execute();
      await db.schema
        .createIndex('access_requests_requester')
        .on('access_requests')
        .column('requester')
        .execute();
      await db.schema
        .createTable('approvals')
        .addColumn('request_id', 'text', (c) => c.notNull().references('access_requests.id'))
        .addColumn('approver', 'text', (c) => c.notNull())
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('approvals_pk', ['request_id', 'approver'])
        .execute();
      await db.schema
        .createTable('grants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('request_id', 'text', (c) => c.notNull().unique().references('access_requests.id'))
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('level', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('review_required', 'boolean', (c) => c.notNull())
        .addColumn('warned_at', 'timestamptz')
        .addColumn('revoked_at', 'timestamptz')
        .addColumn('revoked_by', 'text')
        .addColumn('revoke_reason', 'text')
        .addColumn('revocation_state', 'text', (c) => c.notNull().defaultTo('none'))
        .addColumn('revocation_attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_revocation_attempt_at', 'timestamptz')
        .execute();
      await db.schema
        .createIndex('grants_active_expiry')
        .on('grants')
        .columns(['status', 'expires_at'])
        .execute();
      await db.schema.createIndex('grants_holder').on('grants').columns(['holder', 'status']).execute();
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('webhook', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('payload', 'jsonb', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('webhook_deliveries_due')
        .on('webhook_deliveries')
        .columns(['status', 'next_attempt_at'])
        .execute();
    },
  },
  '0003_recordings': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('recordings')
        .addColumn('session_id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text')
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('file', 'text', (c) => c.notNull())
        .addColumn('started_at', 'timestamptz', (c) => c.notNull())
        .addColumn('ended_at', 'timestamptz')
        .addColumn('sha256', 'text')
        .addColumn('bytes', 'bigint')
        .addColumn('status', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('recordings_target')
        .on('recordings')
        .columns(['target_id', 'started_at'])
        .execute();
    },
  },
  '0004_reviews': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('reviews')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('requester', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('text', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('rule', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('details', 'jsonb', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('approver_users', 'jsonb', (c) => c.notNull())
        .addColumn('approver_groups', 'jsonb', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addColumn('decided_by', 'text')
        .addColumn('decision_reason', 'text')
        .addColumn('decided_at', 'timestamptz')
        .addColumn('used_at', 'timestamptz')
        .execute();
      await db.schema.createIndex('reviews_status').on('reviews').columns(['status', 'expires_at']).execute();
    },
  },
  '0005_target_tls_ca': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('targets').addColumn('tls_ca', 'text').execute();
    },
  },
  // Lists and the ledger show the CA bundle by its SHA-256: kept beside it, not hashed per read.
  '0006_target_tls_ca_sha256': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('targets').addColumn('tls_ca_sha256', 'text').execute();
      await sql`update targets set tls_ca_sha256 = encode(sha256(convert_to(tls_ca, 'UTF8')), 'hex') where tls_ca is not null`.execute(
        db,
      );
    },
  },
  // Break-glass grants are reviewed after the fact: who looked, when, and what they found.
  '0007_grant_review': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('grants')
        .addColumn('reviewed_by', 'text')
        .addColumn('reviewed_at', 'timestamptz')
        .addColumn('review_note', 'text')
        .execute();
    },
  },
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: 'sallyport_migrations',
    migrationLockTableName: 'sallyport_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`store migration ${failed ?? ''} failed: ${(error as Error).message}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
