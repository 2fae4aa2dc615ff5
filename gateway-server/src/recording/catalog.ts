import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { sql } from 'kysely';
import type { Ledger } from '../audit';
import type { Store } from '../store/db';
import type { RecordingRow } from '../store/tables';
import { hashFile, openRecording, type RecordingWriter } from './writer';

export interface RecordingMeta {
  sessionId: string;
  kind: 'ssh' | 'sql';
  targetId: string;
  grantId: string | null;
  username: string;
}

export interface ActiveRecording extends RecordingWriter {
  sessionId: string;
  /** Closes the file, stores its hash and writes `recording.closed` to the ledger. */
  finish(): Promise<{ sha256: string; bytes: number }>;
}

export class RecordingError extends Error {
  constructor(
    readonly code: 'not_found' | 'incomplete' | 'tampered' | 'missing_file',
    message: string,
  ) {
    super(message);
    this.name = 'RecordingError';
  }
}

export type RecordingCatalog = ReturnType<typeof createRecordingCatalog>;

/** Where session recordings live, what the store knows of them, and verified reads. */
export function createRecordingCatalog(deps: {
  store: Store;
  ledger: Ledger;
  dir: string;
  flushMs?: number;
}) {
  const db = deps.store.db;
  return {
    dir: deps.dir,

    /** Opens the recording before the session starts: if it cannot be opened, the session must not start. */
    async start(meta: RecordingMeta): Promise<ActiveRecording> {
      const file = `${meta.sessionId}.${meta.kind === 'ssh' ? 'cast' : 'jsonl'}`;
      const writer = await openRecording({
        dir: deps.dir,
        name: file,
        ...(deps.flushMs ? { flushMs: deps.flushMs } : {}),
      });
      await db
        .insertInto('recordings')
        .values({
          session_id: meta.sessionId,
          kind: meta.kind,
          target_id: meta.targetId,
          grant_id: meta.grantId,
          username: meta.username,
          file,
          started_at: new Date(),
          status: 'recording',
        })
        .execute();
      return Object.assign(writer, {
        sessionId: meta.sessionId,
        async finish() {
          try {
            const result = await writer.close();
            await db.transaction().execute(async (trx) => {
              await trx
                .updateTable('recordings')
                .set({ status: 'complete', ended_at: new Date(), sha256: result.sha256, bytes: result.bytes })
                .where('session_id', '=', meta.sessionId)
                .execute();
              await deps.ledger.append(
                {
                  kind: 'recording.closed',
                  actor: 'sallyport',
                  actorKind: 'system',
                  subject: meta.username,
                  targetId: meta.targetId,
                  data: {
                    sessionId: meta.sessionId,
                    kind: meta.kind,
                    sha256: result.sha256,
                    bytes: result.bytes,
                    grantId: meta.grantId,
                  },
                },
                trx,
              );
            });
            return result;
          } catch (err) {
            await db
              .updateTable('recordings')
              .set({ status: 'failed', ended_at: new Date() })
              .where('session_id', '=', meta.sessionId)
              .execute();
            await deps.ledger.append({
              kind: 'recording.failed',
              actor: 'sallyport',
              actorKind: 'system',
              subject: meta.username,
              targetId: meta.targetId,
              data: { sessionId: meta.sessionId, error: (err as Error).message },
            });
            throw err;
          }
        },
      });
    },

    async get(sessionId: string): Promise<RecordingRow | undefined> {
      return db.selectFrom('recordings').selectAll().where('session_id', '=', sessionId).executeTakeFirst();
    },

    async list(f: { username?: string; targetId?: string; limit?: number } = {}): Promise<RecordingRow[]> {
      let q = db
        .selectFrom('recordings')
        .selectAll()
        .orderBy('started_at', 'desc')
        .limit(Math.min(f.limit ?? 200, 1000));
      if (f.username) q = q.where('username', '=', f.username);
      if (f.targetId) q = q.where('target_id', '=', f.targetId);
      return q.execute();
    },

    /** A stream of a complete recording whose bytes still hash to what the ledger recorded. */
    async open(sessionId: string): Promise<{ row: RecordingRow; stream: Readable }> {
      const row = await this.get(sessionId);
      if (!row) throw new RecordingError('not_found', `no recording for session ${sessionId}`);
      if (row.status !== 'complete' || !row.sha256)
        throw new RecordingError('incomplete', `the recording of session ${sessionId} is ${row.status}`);
      // The ledger is the authority: a store row edited together with the file still fails here.
      const closed = await db
        .selectFrom('audit_events')
        .select('data')
        .where('kind', '=', 'recording.closed')
        .where(sql`data->>'sessionId'`, '=', sessionId)
        .executeTakeFirst();
      if (!closed || closed.data.sha256 !== row.sha256) {
        throw new RecordingError(
          'tampered',
          `the recording of session ${sessionId} is not the one the ledger recorded`,
        );
      }
      const file = path.join(deps.dir, row.file);
      const actual = await hashFile(file).catch(() => {
        throw new RecordingError('missing_file', `the recording file of session ${sessionId} is missing`);
      });
      if (actual !== row.sha256)
        throw new RecordingError(
          'tampered',
          `the recording of session ${sessionId} does not match the hash in the ledger`,
        );
      return { row, stream: createReadStream(file) };
    },
  };
}
