/**
 * Live sessions per grant, in this gateway process. The SSH and SQL layers
 * register a closer when a session opens; revocation calls every closer of the
 * grant and reports how many closed. Live connections are the only state a
 * gateway keeps in memory.
 */
export interface LiveSession {
  id: string;
  kind: 'ssh' | 'sql' | 'exec' | 'test';
  username: string;
  /** Tell the user why, then close. Must resolve once the session is gone. */
  close(reason: string): Promise<void>;
}

export interface CloseReport {
  closed: number;
  failed: Array<{ sessionId: string; error: string }>;
}

export class SessionRegistry {
  private readonly byGrant = new Map<string, Map<string, LiveSession>>();

  register(grantId: string, session: LiveSession): () => void {
    let sessions = this.byGrant.get(grantId);
    if (!sessions) {
      sessions = new Map();
      this.byGrant.set(grantId, sessions);
    }
    sessions.set(session.id, session);
    return () => {
      const s = this.byGrant.get(grantId);
      s?.delete(session.id);
      if (s?.size === 0) this.byGrant.delete(grantId);
    };
  }

  /** The grants that have live sessions here. */
  grantIds(): string[] {
    return [...this.byGrant.keys()];
  }

  count(grantId: string): number {
    return this.byGrant.get(grantId)?.size ?? 0;
  }

  /** Closes every session of the grant, each bounded by `timeoutMs`. Sessions that fail stay registered. */
  async closeAll(grantId: string, reason: string, timeoutMs = 5000): Promise<CloseReport> {
    const sessions = [...(this.byGrant.get(grantId)?.values() ?? [])];
    const report: CloseReport = { closed: 0, failed: [] };
    await Promise.all(
      sessions.map(async (s) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            s.close(reason),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`did not close within ${timeoutMs} ms`)), timeoutMs);
            }),
          ]);
          this.byGrant.get(grantId)?.delete(s.id);
          report.closed++;
        } catch (err) {
          report.failed.push({ sessionId: s.id, error: (err as Error).message });
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    if (this.byGrant.get(grantId)?.size === 0) this.byGrant.delete(grantId);
    return report;
  }
}
