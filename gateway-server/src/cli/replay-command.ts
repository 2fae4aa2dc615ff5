import { Readable } from 'node:stream';
import { GatewayError, SqlRecordingLine } from '@sallyport/protocol';
import { type Command, InvalidArgumentError } from 'commander';
import { CliError } from './main';
import { type Io, printable, processIo } from './output';
import { resolveSession } from './session';

/**
 * `sallyport replay <sessionId> [--speed 2] [--raw]` — plays a recorded session
 * from the gateway. The gateway serves a recording only while its bytes still
 * hash to what the ledger recorded at close; anything else is refused, and so is
 * it here (exit code 4), with what went wrong.
 *
 * - SSH (asciicast v2): the output events are written to stdout with their
 *   recorded timing divided by `--speed`; idle gaps are capped at 2 s.
 * - SQL (JSON lines): each statement with its verdict and row count (or error).
 * - `--raw`: the file exactly as stored (for asciinema, jq, archiving).
 */
export const REPLAY_EXIT = { unusable: 4 } as const;
/** Longest pause replayed (before the speed factor): nobody wants to watch someone think. */
export const IDLE_CAP_S = 2;

const parseSpeed = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a positive number, e.g. 2 or 0.5');
  return n;
};

const UNUSABLE: Record<string, (id: string, message: string) => string> = {
  recording_tampered: (id, m) =>
    `the recording of session ${id} failed verification and is not shown: ${m}. It has been changed or damaged since it was closed; the ledger keeps the hash of the original.`,
  recording_incomplete: (id, m) =>
    `the recording of session ${id} cannot be replayed yet: ${m} (the session may still be running, or its recording failed).`,
  recording_missing_file: (id, m) => `the recording of session ${id} cannot be replayed: ${m}.`,
};

export function registerReplayCommand(program: Command, io: Io, env: NodeJS.ProcessEnv) {
  program
    .command('replay')
    .description('replay a recorded session (SSH: the terminal with its timing; SQL: the statements)')
    .argument('<sessionId>', 'session id (from `sallyport audit` or the app)')
    .option('--speed <factor>', 'playback speed (2 = twice as fast)', parseSpeed, 1)
    .option('--raw', 'print the recording file as stored (asciicast v2 or JSON lines)')
    .option('-g, --gateway <url>', 'gateway URL')
    .action(async (sessionId: string, opts: { speed: number; raw?: boolean; gateway?: string }) => {
      const session = resolveSession(env, opts.gateway);
      const base = session.gateway.replace(/\/$/, '');
      const res = await fetch(`${base}/api/recordings/${encodeURIComponent(sessionId)}/content`, {
        headers: { authorization: `Bearer ${session.token}` },
      });
      if (!res.ok) throw await failure(res, sessionId);
      const out = writer(io);
      if (opts.raw) {
        for await (const text of readText(res)) out(text);
        return;
      }
      const lines = readLines(res);
      const type = res.headers.get('content-type') ?? '';
      if (type.includes('ndjson')) return printSql(lines, io);
      await playCast(lines, { speed: opts.speed, out, io, sessionId });
    });
}

async function failure(res: Response, sessionId: string): Promise<Error> {
  let body: { error?: { code?: string; message?: string; requestId?: string } } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON: fall through with the status alone
  }
  const code = body.error?.code ?? `http_${res.status}`;
  const message = body.error?.message ?? res.statusText;
  const explain = UNUSABLE[code];
  if (explain) return new CliError(explain(sessionId, message), REPLAY_EXIT.unusable);
  if (res.status === 404) return new CliError(`no recording of session ${sessionId} that you may replay`);
  return new GatewayError(res.status, code, message, body.error?.requestId);
}

/** Writes terminal bytes as they are: the real stdout gets no added newlines. */
function writer(io: Io): (text: string) => void {
  if (io === processIo) return (text) => void process.stdout.write(text);
  return (text) => io.out(text);
}

/** The body as text, chunk by chunk (a character split between chunks is kept whole). */
async function* readText(res: Response): AsyncGenerator<string> {
  if (!res.body) return;
  const decoder = new TextDecoder('utf8');
  for await (const chunk of Readable.fromWeb(res.body as never) as AsyncIterable<Uint8Array>) {
    const text = decoder.decode(chunk, { stream: true });
    if (text) yield text;
  }
  const end = decoder.decode();
  if (end) yield end;
}

async function* readLines(res: Response): AsyncGenerator<string> {
  let rest = '';
  for await (const text of readText(res)) {
    const parts = (rest + text).split('\n');
    rest = parts.pop() ?? '';
    yield* parts;
  }
  if (rest) yield rest;
}

interface CastHeader {
  version?: number;
  width?: number;
  height?: number;
  timestamp?: number;
  title?: string;
  command?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function playCast(
  lines: AsyncIterable<string>,
  o: { speed: number; out: (text: string) => void; io: Io; sessionId: string },
): Promise<void> {
  let header: CastHeader | undefined;
  let last = 0;
  let virtualMs = 0;
  let events = 0;
  const started = Date.now();
  for await (const line of lines) {
    if (!line.trim()) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new CliError(`the recording of session ${o.sessionId} has a line that is not JSON`, 4);
    }
    if (!header) {
      header = parsed as CastHeader;
      if (header.version !== 2)
        throw new CliError(`the recording of session ${o.sessionId} is not asciicast v2`, 4);
      const when = header.timestamp ? new Date(header.timestamp * 1000).toISOString() : 'unknown time';
      o.io.err(
        `replaying ${header.title ?? o.sessionId} (${when}, ${header.width}x${header.height}${
          header.command !== undefined ? `, command: ${header.command}` : ''
        })${o.speed !== 1 ? ` at ${o.speed}x` : ''}`,
      );
      continue;
    }
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'number') continue;
    const [t, code, data] = parsed as [number, string, unknown];
    if (code !== 'o' || typeof data !== 'string') continue;
    // Timing: the gap since the previous event, capped, scaled; slept against a virtual clock so
    // many small events do not add up to drift.
    virtualMs += (Math.min(Math.max(0, t - last), IDLE_CAP_S) * 1000) / o.speed;
    last = t;
    const ahead = started + virtualMs - Date.now();
    if (ahead > 1) await sleep(ahead);
    o.out(data);
    events++;
  }
  if (!header) throw new CliError(`the recording of session ${o.sessionId} is empty`, 4);
  o.io.err(`\r\n[sallyport] end of recording (${events} output events, ${last.toFixed(1)} s recorded)`);
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/**
 * SQL recordings are JSON lines (`SqlRecordingLine`, protocol/src/sql.ts): printed as the session's
 * header, then each statement with its verdict, row count or error, and the end. A line this version
 * does not know is printed as it is.
 */
async function printSql(lines: AsyncIterable<string>, terminalIo: Io): Promise<void> {
  // Statements, errors and values come from users and the database: nothing in them may act on the
  // terminal (a raw SSH replay, by contrast, is a terminal by design).
  const io: Io = {
    out: (text) => terminalIo.out(printable(text)),
    err: (text) => terminalIo.err(printable(text)),
  };
  for await (const raw of lines) {
    if (!raw.trim()) continue;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      io.out(raw);
      continue;
    }
    const parsed = SqlRecordingLine.safeParse(json);
    if (!parsed.success) {
      io.out(raw);
      continue;
    }
    const l = parsed.data;
    switch (l.type) {
      case 'header':
        io.out(
          `session ${l.sessionId}: ${l.username} on ${l.targetId} (${l.level}${l.readOnly ? ', read-only' : ''}), started ${l.startedAt}`,
        );
        break;
      case 'batch':
        break;
      case 'statement': {
        const outcome = l.error
          ? `error${l.error.code ? ` ${l.error.code}` : ''}: ${l.error.message}`
          : l.cancelled
            ? 'cancelled'
            : l.verdict !== 'allow'
              ? `${l.message ?? 'not run'}${l.rule ? ` (rule ${l.rule})` : ''}`
              : `${l.command ?? 'done'}${l.rowCount !== null ? `, ${l.rowCount} row${l.rowCount === 1 ? '' : 's'}${l.truncated ? ' (truncated)' : ''}` : ''}, ${Math.round(l.durationMs)} ms`;
        io.out(`${l.at}  [${l.verdict}] ${oneLine(l.sql)}\n    -> ${outcome}`);
        for (const n of l.notices ?? []) {
          io.out(`    ${n.severity}:  ${oneLine(n.message)}`);
          if (n.detail) io.out(`    DETAIL:  ${oneLine(n.detail)}`);
          if (n.hint) io.out(`    HINT:  ${oneLine(n.hint)}`);
        }
        break;
      }
      case 'cancel':
        io.out(`${l.at}  cancelled by the user`);
        break;
      case 'end':
        io.out(
          `${l.at}  session ended: ${l.reason}${l.statements !== undefined ? ` (${l.statements} statement${l.statements === 1 ? '' : 's'})` : ''}`,
        );
        break;
    }
  }
}
