// SQL guardrail rules and their evaluation over an analysed batch (see analyze.ts).
//
// A rule matches a statement when EVERY criterion it gives matches; inside one criterion, ANY
// listed value may match. An empty or missing list is "not given". A rule with no criterion at all
// matches every statement (a catch-all "review everything" rule).
//
// - kinds: node names, case-insensitive; the statement's own kind OR any statement nested in it
//   (a DELETE in a CTE, under EXPLAIN or PREPARE, or statically visible in a DO body).
// - tags: exact tag names, `*` wildcard ('contains:*', 'language:*').
// - functions: names, case-insensitive, `*` wildcard, schema optional. 'pg_read_file' matches
//   `pg_read_file(…)` and `pg_catalog.pg_read_file(…)` (and `evil.pg_read_file(…)`);
//   'pg_catalog.pg_read_file' matches qualified calls in that schema and every unqualified call of
//   that name (search_path decides at run time, so unqualified calls fail closed).
// - relations: 'schema.table' / 'table' with `*` wildcard, case-insensitive. An unqualified pattern
//   matches the table in any schema. An unqualified relation in the SQL matches a qualified pattern
//   by table name (it may resolve to that schema through search_path), except 'schema.*' patterns,
//   which match unqualified names only when the schema pattern matches 'public' (the default
//   search_path) — otherwise 'payroll.*' would catch every unqualified table in every query.
//
// Verdict: the strictest action in the batch wins (block > review > allow); the first statement
// with that action is named, with the first rule (in list order) that gave it.

import { z } from 'zod';
import type { BatchAnalysis, StatementInfo } from './analyze';

export const SqlRuleSchema = z.object({
  name: z.string().min(1),
  action: z.enum(['block', 'review']),
  message: z.string().optional(),
  match: z.object({
    kinds: z.array(z.string()).optional(),
    tags: z.array(z.string()).optional(),
    functions: z.array(z.string()).optional(),
    /** glob-ish: 'public.*', 'payroll.salaries', 'customers' */
    relations: z.array(z.string()).optional(),
  }),
  /** Approvers want an EXPLAIN row estimate next to the statement. */
  explain: z.boolean().optional(),
});
export type SqlRule = z.infer<typeof SqlRuleSchema>;

export interface SqlVerdict {
  action: 'allow' | 'block' | 'review';
  /** 0-based index of the statement that decided the verdict (absent for allow and parse errors). */
  statementIndex?: number;
  statement?: string;
  rule?: string;
  message: string;
  statements: StatementInfo[];
  /** Set when the deciding rule asks for an EXPLAIN estimate for approvers. */
  explain?: boolean;
  /** Parse errors only: 1-based character position reported by the parser. */
  position?: number;
}

/** Rule name used in the verdict when the batch does not parse. */
export const SYNTAX_ERROR_RULE = 'syntax-error';

export const DEFAULT_SQL_RULES: SqlRule[] = [
  // ---- block: cluster-wide damage, privilege escalation, server file/program access ----------
  {
    name: 'drop-database',
    action: 'block',
    message: 'DROP DATABASE is not allowed through the gateway.',
    match: { kinds: ['DropdbStmt'] },
  },
  {
    name: 'alter-system',
    action: 'block',
    message: 'ALTER SYSTEM changes server configuration and is not allowed.',
    match: { kinds: ['AlterSystemStmt'] },
  },
  {
    name: 'role-management',
    action: 'block',
    message: 'Creating, altering or dropping roles is not allowed through the gateway.',
    match: { kinds: ['CreateRoleStmt', 'AlterRoleStmt', 'AlterRoleSetStmt', 'DropRoleStmt'] },
  },
  {
    name: 'privilege-change',
    action: 'block',
    message: 'Changing privileges or ownership (GRANT, REVOKE, REASSIGN OWNED) is not allowed.',
    match: { kinds: ['GrantStmt', 'GrantRoleStmt', 'AlterDefaultPrivilegesStmt', 'ReassignOwnedStmt'] },
  },
  {
    name: 'set-role',
    action: 'block',
    message: "Changing the current role (SET/RESET ROLE, set_config('role', …)) is not allowed.",
    match: { tags: ['set-role'] },
  },
  {
    name: 'set-session-authorization',
    action: 'block',
    message: 'Changing the session user (SET SESSION AUTHORIZATION, DISCARD ALL) is not allowed.',
    match: { tags: ['set-session-authorization'] },
  },
  {
    name: 'copy-program',
    action: 'block',
    message: 'COPY … PROGRAM runs a shell command on the database server and is not allowed.',
    match: { tags: ['copy-program'] },
  },
  {
    name: 'copy-server-file',
    action: 'block',
    message:
      'COPY to or from a file on the database server is not allowed; use COPY … TO STDOUT / FROM STDIN.',
    match: { tags: ['copy-to-file', 'copy-from-file'] },
  },
  {
    name: 'server-file-functions',
    action: 'block',
    message: 'Functions that read, list or write files on the database server are not allowed.',
    match: {
      functions: [
        'pg_read_file',
        'pg_read_binary_file',
        'pg_stat_file',
        'pg_ls_dir',
        'pg_ls_logdir',
        'pg_ls_waldir',
        'pg_ls_tmpdir',
        'pg_ls_archive_statusdir',
        'pg_ls_logicalsnapdir',
        'pg_ls_logicalmapdir',
        'pg_ls_replslotdir',
        'pg_file_write',
        'pg_file_rename',
        'pg_file_unlink',
        'pg_file_sync',
        'pg_logdir_ls',
        'lo_import',
        'lo_export',
      ],
    },
  },
  {
    name: 'server-admin-functions',
    action: 'block',
    message: 'Server administration functions (signals, reload, WAL, replication slots) are not allowed.',
    match: {
      functions: [
        'pg_terminate_backend',
        'pg_cancel_backend',
        'pg_reload_conf',
        'pg_rotate_logfile',
        'pg_promote',
        'pg_switch_wal',
        'pg_create_restore_point',
        'pg_backup_start',
        'pg_backup_stop',
        'pg_create_physical_replication_slot',
        'pg_create_logical_replication_slot',
        'pg_drop_replication_slot',
      ],
    },
  },
  {
    name: 'dblink',
    action: 'block',
    message: 'dblink opens connections from the database server and is not allowed.',
    match: { functions: ['dblink*'] },
  },
  {
    name: 'load-library',
    action: 'block',
    message: 'LOAD loads a shared library into the server and is not allowed.',
    match: { kinds: ['LoadStmt'] },
  },
  {
    name: 'untrusted-language',
    action: 'block',
    message: 'Code in C, internal or untrusted procedural languages is not allowed.',
    match: {
      tags: [
        'language:c',
        'language:internal',
        'language:plpython3u',
        'language:plpythonu',
        'language:plperlu',
        'language:pltclu',
      ],
    },
  },
  // ---- review: destructive or not statically analysable; an approver sees the exact text ------
  {
    name: 'truncate',
    action: 'review',
    message: 'TRUNCATE removes every row and needs approval.',
    match: { kinds: ['TruncateStmt'] },
  },
  {
    name: 'drop-object',
    action: 'review',
    message: 'DROP needs approval.',
    match: { kinds: ['DropStmt', 'DropOwnedStmt', 'DropTableSpaceStmt', 'DropSubscriptionStmt'] },
  },
  {
    name: 'delete-without-where',
    action: 'review',
    message: 'DELETE without a WHERE clause that references a column affects every row and needs approval.',
    match: { tags: ['delete-without-where'] },
    explain: true,
  },
  {
    name: 'update-without-where',
    action: 'review',
    message: 'UPDATE without a WHERE clause that references a column affects every row and needs approval.',
    match: { tags: ['update-without-where'] },
    explain: true,
  },
  {
    name: 'alter-table',
    action: 'review',
    message: 'ALTER TABLE needs approval.',
    match: { kinds: ['AlterTableStmt'] },
  },
  {
    name: 'do-block',
    action: 'review',
    message: 'DO blocks run procedural code that cannot be checked statically and need approval.',
    match: { tags: ['do-block'] },
  },
  {
    name: 'dynamic-sql',
    action: 'review',
    message: 'Dynamic SQL (EXECUTE, SQL passed as a string) cannot be checked statically and needs approval.',
    match: { tags: ['dynamic-sql'] },
  },
  {
    name: 'dynamic-config',
    action: 'review',
    message: 'set_config() with a parameter name computed at run time needs approval.',
    match: { tags: ['dynamic-config'] },
  },
  {
    name: 'create-extension',
    action: 'review',
    message: 'CREATE EXTENSION needs approval.',
    match: { kinds: ['CreateExtensionStmt'] },
  },
];

const RANK = { allow: 0, review: 1, block: 2 } as const;

export function evaluateBatch(analysis: BatchAnalysis, rules: SqlRule[]): SqlVerdict {
  if (!analysis.ok) {
    const { message, position } = analysis.error;
    return {
      action: 'block',
      rule: SYNTAX_ERROR_RULE,
      message: position === undefined ? message : `${message} (at position ${position})`,
      statements: [],
      ...(position === undefined ? {} : { position }),
    };
  }
  const { statements } = analysis;
  let best: { statement: StatementInfo; rule: SqlRule } | undefined;
  for (const statement of statements) {
    const rule = strictestRule(statement, rules);
    if (rule && (!best || RANK[rule.action] > RANK[best.rule.action])) best = { statement, rule };
  }
  if (!best) {
    return {
      action: 'allow',
      message: statements.length === 0 ? 'empty batch' : `${statements.length} statement(s) allowed`,
      statements,
    };
  }
  const { statement, rule } = best;
  const detail = rule.message ?? `matched rule "${rule.name}"`;
  return {
    action: rule.action,
    statementIndex: statement.index,
    statement: statement.text,
    rule: rule.name,
    message: `statement ${statement.index + 1} (${statement.kind}): ${detail}`,
    statements,
    ...(rule.explain ? { explain: true } : {}),
  };
}

/** The first rule with the strictest action among the rules matching this statement. */
export function strictestRule(statement: StatementInfo, rules: SqlRule[]): SqlRule | undefined {
  let best: SqlRule | undefined;
  for (const rule of rules) {
    if (ruleMatches(rule, statement) && (!best || RANK[rule.action] > RANK[best.action])) best = rule;
  }
  return best;
}

export function ruleMatches(rule: SqlRule, s: StatementInfo): boolean {
  const { kinds, tags, functions, relations } = rule.match;
  if (given(kinds)) {
    const own = [s.kind, ...s.tags.filter((t) => t.startsWith('contains:')).map((t) => t.slice(9))];
    const wanted = new Set(kinds.map((k) => k.toLowerCase()));
    if (!own.some((k) => wanted.has(k.toLowerCase()))) return false;
  }
  if (given(tags) && !tags.some((p) => s.tags.some((t) => glob(p).test(t)))) return false;
  if (given(functions)) {
    const calls = s.tags.filter((t) => t.startsWith('function:')).map((t) => t.slice(9));
    if (!functions.some((p) => calls.some((call) => functionMatches(p, call)))) return false;
  }
  if (given(relations) && !relations.some((p) => s.relations.some((r) => relationMatches(p, r))))
    return false;
  return true;
}

function given(list: string[] | undefined): list is string[] {
  return list !== undefined && list.length > 0;
}

function functionMatches(pattern: string, call: string): boolean {
  const [ps, pn] = splitLast(pattern.toLowerCase());
  const [cs, cn] = splitLast(call);
  if (!glob(pn).test(cn)) return false;
  return ps === undefined || cs === undefined || glob(ps).test(cs);
}

function relationMatches(pattern: string, relation: string): boolean {
  const [ps, pt] = splitLast(pattern.toLowerCase());
  const [rs, rt] = splitLast(relation.toLowerCase());
  if (!glob(pt).test(rt)) return false;
  if (ps === undefined) return true;
  const schema = lastPart(ps);
  if (rs === undefined) return pt !== '*' || glob(schema).test('public');
  return glob(schema).test(lastPart(rs));
}

/** 'a.b.c' → ['a.b', 'c']; 'c' → [undefined, 'c']. */
function splitLast(name: string): [string | undefined, string] {
  const i = name.lastIndexOf('.');
  return i < 0 ? [undefined, name] : [name.slice(0, i), name.slice(i + 1)];
}

function lastPart(name: string): string {
  return splitLast(name)[1];
}

const globCache = new Map<string, RegExp>();

/** A rule's wildcard pattern: `*` is any text, the rest literal, case-insensitive. */
export function glob(pattern: string): RegExp {
  let re = globCache.get(pattern);
  if (!re) {
    const source = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    re = new RegExp(`^${source}$`, 'i');
    globCache.set(pattern, re);
  }
  return re;
}
