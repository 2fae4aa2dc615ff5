import { readFileSync } from 'node:fs';
import {
  createGatewayClient,
  type SqlColumn,
  type SqlServerMessage,
  SqlServerMessage as SqlServerMessageSchema,
} from '@sallyport/protocol';
import { type Command, CommanderError } from 'commander';
import WebSocket from 'ws';
import { type Io, printable } from './output';
import { resolveSession } from './session';
import { gatewayTlsHint } from './tls-hint';

/**
 * `sallyport sql <target> -c "…"` / `-f file.sql`: runs SQL through the gateway's SQL channel
 * (guarded, masked, audited) under the caller's grant. Masked cells print as their masked value.
 * A batch that needs review waits for an approver (`sallyport reviews approve <id>`), then runs
 * exactly as sent; `--no-wait` exits at once instead, printing the review id (the statement does
 * not run, and the review is cancelled as the session ends).
 * Exit codes: 0 ok, 1 error (SQL error, connection lost, session closed, cancelled), 3 refused (no
 * usable grant, not signed in), 8 blocked by a guardrail or by an approver (denied, expired),
 * 9 needs review and --no-wait was given.
 */
export const SQL_EXIT = { ok: 0, error: 1, refused: 3, blocked: 8, review: 9 } as const;

type Format = 'table' | 'csv' | 'json';

interface SqlOptions {
  command?: string;
  file?: string;
  grant?: string;
  format: string;
  maxRows?: string;
  gateway?: string;
  /** False with --no-wait. */
  wait: boolean;
}

/** Ends the command with an exit code once its output is printed (main.ts prints nothing more). */
class Exit extends CommanderError {
  constructor(code: number, what: string) {
    super(code, `sallyport.${what}`, what);
  }
}

const REFUSED_CODES =
  /^(no_grant|grant_revoked|grant_expired|level_mismatch|not_postgres|token_|unauthorized|session_expired|forbidden)/;

interface ResultSet {
  statementIndex: number;
  columns: SqlColumn[];
  rows: (string | null)[][];
  masked: [number, number][];
  /** Rows received (csv output streams them instead of keeping them). */
  count: number;
  command?: string;
  rowCount?: number | null;
  truncated?: boolean;
}

export function registerSqlCommand(program: Command, terminalIo: Io, env: NodeJS.ProcessEnv) {
  // What reaches stderr (messages, notices, errors quoting values) is made printable; stdout's CSV
  // and JSON stay exact for scripts, and the table cleans its own cells.
  const io: Io = { out: terminalIo.out, err: (text) => terminalIo.err(printable(text)) };
  program
    .command('sql')
    .description('Run SQL on a PostgreSQL target through the gateway (guarded, masked, audited)')
    .argument('<target>', 'target id')
    .option('-c, --command <sql>', 'SQL to run: one or more statements')
    .option('-f, --file <path>', 'file of SQL to run (- for standard input)')
    .option('--grant <id>', 'grant to use (default: your active grant for the target)')
    .option('--format <format>', 'output: table, csv or json', 'table')
    .option('--max-rows <n>', 'most rows per statement (the gateway applies its own cap too)')
    .option('--gateway <url>', 'gateway URL (default: the signed-in gateway)')
    .option('--no-wait', 'if the SQL needs review, print the review id and exit (code 9) instead of waiting')
    .action(async (targetId: string, opts: SqlOptions) => {
      const format = opts.format as Format;
      if (!['table', 'csv', 'json'].includes(format)) {
        io.err(`sallyport: --format ${opts.format}: expected table, csv or json`);
        throw new Exit(SQL_EXIT.error, 'usage');
      }
      if ((opts.command === undefined) === (opts.file === undefined)) {
        io.err('sallyport: give the SQL with either -c "<sql>" or -f <file>');
        throw new Exit(SQL_EXIT.error, 'usage');
      }
      let maxRows: number | undefined;
      if (opts.maxRows !== undefined) {
        maxRows = Number(opts.maxRows);
        if (!Number.isSafeInteger(maxRows) || maxRows < 1) {
          io.err(`sallyport: --max-rows ${opts.maxRows}: expected a positive integer`);
          throw new Exit(SQL_EXIT.error, 'usage');
        }
      }
      const sql =
        opts.command ??
        (opts.file === '-' ? readFileSync(0, 'utf8') : readFileSync(opts.file as string, 'utf8'));
      const session = resolveSession(env, opts.gateway);
      let grantId = opts.grant;
      if (!grantId) {
        const api = createGatewayClient({ baseUrl: session.gateway, token: () => session.token });
        const target = await api.target(targetId);
        grantId = target.access.grantId;
        if (!grantId || (target.access.state !== 'active' && target.access.state !== 'expiring')) {
          io.err(
            `sallyport: no active grant for ${targetId}: request one first (sallyport request ${targetId} --level read --duration 1h --reason "…")`,
          );
          throw new Exit(SQL_EXIT.refused, 'no_grant');
        }
      }
      const code = await runSql({
        gateway: session.gateway,
        token: session.token,
        targetId,
        grantId,
        sql,
        format,
        maxRows,
        wait: opts.wait,
        io,
      });
      if (code !== 0) throw new Exit(code, 'sql');
    });
}

interface RunOptions {
  gateway: string;
  token: string;
  targetId: string;
  grantId: string;
  sql: string;
  format: Format;
  maxRows: number | undefined;
  /** Wait for an approver when the SQL needs review (default true). */
  wait?: boolean;
  io: Io;
}

/** Opens the SQL channel, runs one batch, prints the results. Resolves with the exit code. */
export function runSql(o: RunOptions): Promise<number> {
  const { io, format } = o;
  const url = `${o.gateway.replace(/\/$/, '').replace(/^http/, 'ws')}/api/sql`;
  const runId = 'cli-1';
  return new Promise<number>((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${o.token}` } });
    const results: ResultSet[] = [];
    let current: ResultSet | undefined;
    let csvSets = 0;
    let finished = false;
    let running = false;
    let interrupted = 0;

    const onSigint = () => {
      if (running && interrupted++ === 0 && ws.readyState === ws.OPEN) {
        io.err('sallyport: cancelling… (press Ctrl-C again to disconnect)');
        ws.send(JSON.stringify({ type: 'cancel', id: runId }));
      } else finish(130);
    };
    process.on('SIGINT', onSigint);

    function finish(code: number) {
      if (finished) return;
      finished = true;
      process.off('SIGINT', onSigint);
      if (format === 'json' && code !== SQL_EXIT.refused) io.out(JSON.stringify({ results }, null, 2));
      ws.removeAllListeners();
      ws.on('error', () => {});
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000);
      resolve(code);
    }

    const printSet = (set: ResultSet) => {
      const tag = commandTag(set);
      if (format === 'table') {
        if (set.columns.length > 0) {
          io.out(renderTable(set));
          const n = set.count;
          io.out(`(${n} row${n === 1 ? '' : 's'}${set.truncated ? ', truncated' : ''})`);
        } else io.out(tag);
      } else if (format === 'csv' && set.columns.length === 0) {
        io.err(tag);
      }
      if (set.truncated) {
        io.err(`sallyport: statement ${set.statementIndex + 1}: result truncated at ${set.count} rows`);
      }
    };

    ws.on('open', () =>
      ws.send(JSON.stringify({ type: 'open', targetId: o.targetId, grantId: o.grantId, reviews: true })),
    );
    ws.on('message', (data) => {
      let frame: SqlServerMessage;
      try {
        const parsed = SqlServerMessageSchema.safeParse(JSON.parse(String(data)));
        if (!parsed.success) return;
        frame = parsed.data;
      } catch {
        return;
      }
      switch (frame.type) {
        case 'ready':
          running = true;
          ws.send(
            JSON.stringify({
              type: 'run',
              id: runId,
              sql: o.sql,
              ...(o.maxRows ? { maxRows: o.maxRows } : {}),
            }),
          );
          return;
        case 'columns':
          current = {
            statementIndex: frame.statementIndex,
            columns: frame.columns,
            rows: [],
            masked: [],
            count: 0,
          };
          if (format === 'csv') {
            if (csvSets++ > 0) io.out('');
            io.out(frame.columns.map((c) => csvCell(c.name)).join(','));
          }
          return;
        case 'rows': {
          if (!current || current.statementIndex !== frame.statementIndex) {
            current = { statementIndex: frame.statementIndex, columns: [], rows: [], masked: [], count: 0 };
          }
          const set = current;
          if (format === 'csv') io.out(frame.rows.map((r) => r.map(csvCell).join(',')).join('\n'));
          else {
            for (const row of frame.rows) set.rows.push(row);
            for (const [r, c] of frame.masked) set.masked.push([set.count + r, c]);
          }
          set.count += frame.rows.length;
          return;
        }
        case 'done': {
          const set =
            current && current.statementIndex === frame.statementIndex
              ? current
              : { statementIndex: frame.statementIndex, columns: [], rows: [], masked: [], count: 0 };
          set.command = frame.command;
          set.rowCount = frame.rowCount;
          set.truncated = frame.truncated;
          current = undefined;
          if (format === 'json') results.push(set);
          else printSet(set);
          return;
        }
        case 'complete':
          return finish(SQL_EXIT.ok);
        case 'notice':
          // Like psql: on stderr, so that CSV and JSON on stdout stay clean.
          io.err(`${frame.severity}:  ${frame.message}`);
          if (frame.detail) io.err(`DETAIL:  ${frame.detail}`);
          if (frame.hint) io.err(`HINT:  ${frame.hint}`);
          return;
        case 'cancelled':
          io.err('sallyport: cancelled');
          return finish(SQL_EXIT.error);
        case 'blocked':
          if (frame.code?.startsWith('review_')) {
            io.err(
              `sallyport: not run: ${frame.message} (rule ${frame.rule}, review ${frame.code.slice(7)})`,
            );
          } else {
            io.err(
              `sallyport: blocked by rule ${frame.rule} (statement ${frame.statementIndex + 1}): ${frame.message}\n  statement: ${frame.statement}`,
            );
          }
          return finish(SQL_EXIT.blocked);
        case 'review': {
          const reviewId = frame.reviewId ?? '?';
          if (frame.status === 'approved') {
            io.err(`sallyport: ${frame.message} (review ${reviewId}); running`);
            return;
          }
          io.err(
            `sallyport: statement ${frame.statementIndex + 1} needs review (rule ${frame.rule}): ${frame.message}\n  statement: ${frame.statement}`,
          );
          if (o.wait === false) {
            io.err(
              `sallyport: not waiting (--no-wait): nothing ran, and review ${reviewId} is cancelled as this session ends`,
            );
            io.out(reviewId);
            return finish(SQL_EXIT.review);
          }
          io.err(
            `sallyport: waiting for approval (review ${reviewId}): run \`sallyport reviews approve ${reviewId}\` as an approver`,
          );
          return;
        }
        case 'error': {
          const where = [
            frame.statementIndex !== undefined ? `statement ${frame.statementIndex + 1}` : undefined,
            frame.position !== undefined ? `position ${frame.position}` : undefined,
          ]
            .filter(Boolean)
            .join(', ');
          const sqlstate = frame.code && /^[0-9A-Z]{5}$/.test(frame.code) ? ` (SQLSTATE ${frame.code})` : '';
          io.err(`sallyport: ERROR${where ? ` at ${where}` : ''}: ${frame.message}${sqlstate}`);
          if (frame.detail) io.err(`  DETAIL: ${frame.detail}`);
          if (frame.hint) io.err(`  HINT: ${frame.hint}`);
          if (frame.position !== undefined) io.err(pointAt(o.sql, frame.position));
          // Errors that belong to no run come before `ready`: the session was refused.
          if (frame.id === undefined && !running) {
            return finish(frame.code && REFUSED_CODES.test(frame.code) ? SQL_EXIT.refused : SQL_EXIT.error);
          }
          if (frame.id === runId) return finish(SQL_EXIT.error);
          return;
        }
        case 'closed':
          io.err(`sallyport: ${frame.reason}`);
          return finish(SQL_EXIT.error);
      }
    });
    ws.on('error', (err) => {
      io.err(
        `sallyport: cannot reach the gateway's SQL channel at ${url}: ${err.message}${gatewayTlsHint(err)}`,
      );
      finish(SQL_EXIT.error);
    });
    ws.on('close', (code, reason) => {
      if (!finished) {
        io.err(`sallyport: the gateway closed the SQL channel (${code}${reason.length ? ` ${reason}` : ''})`);
        finish(SQL_EXIT.error);
      }
    });
  });
}

function commandTag(set: ResultSet): string {
  const n = set.rowCount;
  return n === null || n === undefined ? (set.command ?? '') : `${set.command ?? ''} ${n}`.trim();
}

function csvCell(v: string | null): string {
  if (v === null) return '';
  return /[",\r\n]/.test(v) || v === '' ? `"${v.replace(/"/g, '""')}"` : v;
}

/** psql-like aligned table; NULL prints as empty. */
function renderTable(set: ResultSet): string {
  const names = set.columns.map((c) => printable(c.name));
  const cells = set.rows.map((r) => r.map((v) => (v === null ? '' : printable(v.replace(/\r?\n/g, '\\n')))));
  const widths = names.map((n, i) => Math.max(n.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join(' | ')
      .trimEnd();
  return [line(names), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.map(line)].join('\n');
}

/** The line of the SQL holding 1-based `position`, with a caret under it. */
function pointAt(sql: string, position: number): string {
  const i = Math.max(0, Math.min(sql.length, position - 1));
  const start = sql.lastIndexOf('\n', i - 1) + 1;
  const endAt = sql.indexOf('\n', i);
  const text = sql.slice(start, endAt === -1 ? undefined : endAt);
  return `  ${text}\n  ${' '.repeat(i - start)}^`;
}
