import { GatewayError, type SqlColumn, type SqlRecordingLine } from '@sallyport/protocol';

/** A row of `GET /api/recordings` (gateway-server/src/api/routes/recordings.ts). */
export interface RecordingView {
  sessionId: string;
  kind: 'ssh' | 'sql';
  targetId: string;
  grantId: string;
  username: string;
  startedAt: string;
  endedAt: string | null;
  sha256: string | null;
  bytes: number | null;
  status: string;
}

const str = (v: unknown): v is string => typeof v === 'string';

/** Checks the shape by hand (the protocol package has no schema for this list yet). */
export function parseRecording(v: unknown): RecordingView | null {
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  if (!str(r.sessionId) || (r.kind !== 'ssh' && r.kind !== 'sql') || !str(r.targetId) || !str(r.startedAt)) {
    return null;
  }
  return {
    sessionId: r.sessionId,
    kind: r.kind,
    targetId: r.targetId,
    grantId: str(r.grantId) ? r.grantId : '',
    username: str(r.username) ? r.username : '',
    startedAt: r.startedAt,
    endedAt: str(r.endedAt) ? r.endedAt : null,
    sha256: str(r.sha256) ? r.sha256 : null,
    bytes: typeof r.bytes === 'number' ? r.bytes : null,
    status: str(r.status) ? r.status : 'unknown',
  };
}

async function get(path: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json, */*' } });
  } catch (err) {
    throw new GatewayError(0, 'unreachable', `cannot reach the gateway: ${(err as Error).message}`);
  }
  if (!res.ok) {
    let code = 'http_error';
    let message = `the gateway answered ${res.status}`;
    try {
      const body = (await res.json()) as { error?: { code?: string; message?: string } };
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      // not JSON
    }
    throw new GatewayError(res.status, code, message);
  }
  return res;
}

export async function listRecordings(q: { target?: string; limit?: number } = {}): Promise<RecordingView[]> {
  const params = new URLSearchParams();
  if (q.target) params.set('target', q.target);
  if (q.limit) params.set('limit', String(q.limit));
  const res = await get(`/api/recordings${params.size ? `?${params}` : ''}`);
  const body = (await res.json()) as { recordings?: unknown };
  if (!Array.isArray(body.recordings))
    throw new GatewayError(res.status, 'bad_response', 'unexpected answer');
  return body.recordings.map(parseRecording).filter((r): r is RecordingView => r !== null);
}

export async function getRecording(sessionId: string): Promise<RecordingView> {
  const res = await get(`/api/recordings/${encodeURIComponent(sessionId)}`);
  const r = parseRecording(await res.json());
  if (!r) throw new GatewayError(res.status, 'bad_response', 'unexpected answer');
  return r;
}

export async function recordingContent(sessionId: string): Promise<string> {
  const res = await get(`/api/recordings/${encodeURIComponent(sessionId)}/content`);
  return res.text();
}

// ---- asciicast v2 ----

export interface Asciicast {
  width: number;
  height: number;
  title?: string;
  command?: string;
  timestamp?: number;
  /** Output and resize events, in time order (input is recorded but not replayed: the echo shows it). */
  events: Array<{ t: number; type: 'o' | 'r' | 'i' | 'm'; data: string }>;
  duration: number;
}

export function parseAsciicast(text: string): Asciicast {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  if (header.version !== 2) throw new Error('not an asciicast v2 recording');
  const events: Asciicast['events'] = [];
  for (const line of lines.slice(1)) {
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      continue; // a torn last line (crash): ignore it
    }
    if (!Array.isArray(e) || typeof e[0] !== 'number' || !str(e[1]) || !str(e[2])) continue;
    if (e[1] === 'o' || e[1] === 'r' || e[1] === 'i' || e[1] === 'm')
      events.push({ t: e[0], type: e[1], data: e[2] });
  }
  events.sort((a, b) => a.t - b.t);
  return {
    width: typeof header.width === 'number' ? header.width : 80,
    height: typeof header.height === 'number' ? header.height : 24,
    ...(str(header.title) ? { title: header.title } : {}),
    ...(str(header.command) ? { command: header.command } : {}),
    ...(typeof header.timestamp === 'number' ? { timestamp: header.timestamp } : {}),
    events,
    duration: events.at(-1)?.t ?? 0,
  };
}

// ---- SQL recordings (JSON lines, protocol/src/sql.ts) ----

export type SqlRecordingStatement = Extract<SqlRecordingLine, { type: 'statement' }>;

export interface SqlRecording {
  header: Extract<SqlRecordingLine, { type: 'header' }> | null;
  statements: SqlRecordingStatement[];
  batches: Map<string, string>;
  cancels: Set<string>;
  end: Extract<SqlRecordingLine, { type: 'end' }> | null;
}

export function parseSqlRecording(text: string): SqlRecording {
  const out: SqlRecording = {
    header: null,
    statements: [],
    batches: new Map(),
    cancels: new Set(),
    end: null,
  };
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    const l = v as { type?: unknown } & Record<string, unknown>;
    // Readers ignore line types and fields they do not know; shapes are checked loosely.
    if (l.type === 'header') out.header = l as unknown as SqlRecording['header'];
    else if (l.type === 'batch' && str(l.runId) && str(l.sql)) out.batches.set(l.runId, l.sql);
    else if (l.type === 'cancel' && str(l.runId)) out.cancels.add(l.runId);
    else if (l.type === 'end') out.end = l as unknown as SqlRecording['end'];
    else if (l.type === 'statement' && str(l.sql) && str(l.runId)) {
      const s = l as unknown as SqlRecordingStatement;
      out.statements.push({
        ...s,
        columns: Array.isArray(s.columns) ? (s.columns as SqlColumn[]) : [],
        rows: Array.isArray(s.rows) ? s.rows : [],
        masked: Array.isArray(s.masked) ? s.masked : [],
      });
    }
  }
  return out;
}
