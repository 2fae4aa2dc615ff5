// The words configured SQL rules may use (guard/node-kinds.ts, SQL_TAGS in guard/analyze.ts,
// guard/vocabulary.ts): the lists follow the parser in node_modules and what the analyser really
// reports, the built-in rules use only listed words, and the checks accept exactly what can match.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  analyzeBatch,
  initSqlParser,
  ruleMatches,
  type SqlRule,
  type StatementInfo,
} from '../../src/protocols/postgres/guard';
import { SQL_TAG_FAMILIES, SQL_TAGS } from '../../src/protocols/postgres/guard/analyze';
import { SQL_STATEMENT_KINDS } from '../../src/protocols/postgres/guard/node-kinds';
import { DEFAULT_SQL_RULES } from '../../src/protocols/postgres/guard/rules';
import { editDistance, sqlKindProblem, sqlTagProblem } from '../../src/protocols/postgres/guard/vocabulary';
import { READ_ONLY_SQL_RULES } from '../../src/protocols/postgres/session';

beforeAll(async () => {
  await initSqlParser();
});

/** Statement nodes in the union that the raw parser never hands to the analyser (see node-kinds.ts). */
const NOT_FROM_RAW_PARSER = ['RawStmt', 'SetOperationStmt', 'PLAssignStmt'];

/** The node names of the `Node` union in the @pgsql/types that libpg-query itself resolves. */
function nodeNamesInNodeModules(): string[] {
  const libpg = createRequire(import.meta.url).resolve('libpg-query');
  const file = createRequire(libpg).resolve('@pgsql/types/types.d.ts');
  const text = readFileSync(file, 'utf8');
  const union = /export type Node =([\s\S]*?);\n(?:export|\/\*\*)/.exec(text)?.[1] ?? '';
  return [...union.matchAll(/\{\s*(\w+): \w+;\s*\}/g)].map((m) => m[1] ?? '');
}

const statements = (sql: string): StatementInfo[] => {
  const a = analyzeBatch(sql);
  if (!a.ok) throw new Error(`${sql}: ${a.error.message}`);
  return a.statements;
};

// Every fixed tag, every family, nested statements, CTEs, bodies.
const SAMPLES = [
  'DO LANGUAGE plpython3u $$ import os $$',
  "COPY t FROM '/etc/passwd'",
  "COPY t TO PROGRAM 'id'",
  "COPY t TO '/tmp/x.csv'",
  'DELETE FROM t',
  "DO $$ BEGIN RAISE NOTICE 'hi'; END $$",
  "select set_config(current_setting('my.var'), 'x', false)",
  'PREPARE p AS DELETE FROM t WHERE id = $1; EXECUTE p(1)',
  'EXPLAIN ANALYZE SELECT 1',
  'SELECT * FROM t FOR UPDATE',
  'SET TRANSACTION READ WRITE',
  'SELECT * INTO n FROM t',
  'SET ROLE postgres',
  'SET search_path = a, public',
  'SET SESSION AUTHORIZATION bob',
  'UPDATE t SET a = 1',
  'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
  "select pg_catalog.pg_read_file('/etc/passwd')",
  'CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1',
  "CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'drop table x'; END $$",
  'ALTER TABLE t REPLICA IDENTITY FULL',
  'CREATE SCHEMA s CREATE TABLE t (a int)',
  'CREATE RULE r AS ON INSERT TO t DO ALSO NOTIFY t',
  'select 1 union select 2 except select 3',
  'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE',
  'DROP DATABASE x',
  'ALTER DATABASE d REFRESH COLLATION VERSION',
  'CHECKPOINT',
  'DISCARD ALL',
  'BEGIN READ WRITE',
];

describe('statement kinds', () => {
  it('are the *Stmt nodes of libpg-query’s Node union in node_modules, plus CommonTableExpr', () => {
    const nodes = nodeNamesInNodeModules();
    expect(nodes.length).toBeGreaterThan(200); // the union was found and read
    expect(nodes).toEqual(expect.arrayContaining([...NOT_FROM_RAW_PARSER, 'CommonTableExpr', 'DeleteStmt']));
    const expected = nodes.filter((n) => n.endsWith('Stmt') && !NOT_FROM_RAW_PARSER.includes(n)).sort();
    expect([...SQL_STATEMENT_KINDS].sort()).toEqual([...expected, 'CommonTableExpr'].sort());
    expect(new Set(SQL_STATEMENT_KINDS).size).toBe(SQL_STATEMENT_KINDS.length);
  });

  it('every kind and contains: the analyser reports is listed; left-out nodes are not reported', () => {
    const reported = new Set<string>();
    for (const s of SAMPLES.flatMap(statements)) {
      reported.add(s.kind);
      for (const t of s.tags) if (t.startsWith('contains:')) reported.add(t.slice('contains:'.length));
    }
    for (const kind of reported) expect(SQL_STATEMENT_KINDS, kind).toContain(kind);
    for (const kind of NOT_FROM_RAW_PARSER) expect(reported.has(kind), kind).toBe(false);
    // The samples do reach nested and non-statement kinds.
    expect([...reported]).toEqual(
      expect.arrayContaining(['CommonTableExpr', 'ReturnStmt', 'ReplicaIdentityStmt', 'NotifyStmt']),
    );
  });
});

describe('tags', () => {
  it('SQL_TAGS is exactly the fixed tags the analyser reports on the samples', () => {
    const tags = SAMPLES.flatMap(statements).flatMap((s) => s.tags);
    for (const tag of tags) expect(sqlTagProblem(tag), tag).toBeUndefined();
    const fixed = new Set(tags.filter((t) => !SQL_TAG_FAMILIES.some((f) => t.startsWith(f))));
    expect([...fixed].sort()).toEqual([...SQL_TAGS].sort());
    for (const family of SQL_TAG_FAMILIES)
      expect(
        tags.some((t) => t.startsWith(family)),
        family,
      ).toBe(true);
  });

  it('every tag analyze.ts adds is listed (a new tag must be added to SQL_TAGS)', () => {
    const source = readFileSync(
      new URL('../../src/protocols/postgres/guard/analyze.ts', import.meta.url),
      'utf8',
    );
    const literals = [...source.matchAll(/tags\.add\('([^']+)'\)/g)].map((m) => m[1] ?? '');
    const templates = [...source.matchAll(/tags\.add\(`([^`$]*)\$\{/g)].map((m) => m[1] ?? '');
    expect(literals.length).toBeGreaterThan(15);
    expect(templates.length).toBeGreaterThan(2);
    for (const tag of literals) {
      expect(sqlTagProblem(tag), tag).toBeUndefined();
      if (!tag.includes(':')) expect(SQL_TAGS, tag).toContain(tag);
    }
    for (const prefix of templates) expect(SQL_TAG_FAMILIES, prefix).toContain(prefix);
  });
});

describe('built-in rules', () => {
  it('use only listed kinds and tags', () => {
    const rules = [...DEFAULT_SQL_RULES, ...READ_ONLY_SQL_RULES];
    const kinds = rules.flatMap((r) => r.match.kinds ?? []);
    const tags = rules.flatMap((r) => r.match.tags ?? []);
    expect(kinds.length).toBeGreaterThan(10);
    expect(tags.length).toBeGreaterThan(10);
    for (const kind of kinds) expect(sqlKindProblem(kind), kind).toBeUndefined();
    for (const tag of tags) expect(sqlTagProblem(tag), tag).toBeUndefined();
  });
});

describe('checks', () => {
  let analysed: StatementInfo[] = [];
  beforeAll(() => {
    analysed = SAMPLES.flatMap(statements);
  });
  const matchesSome = (match: SqlRule['match']) =>
    analysed.some((s) => ruleMatches({ name: 'x', action: 'block', match }, s));

  it('accept known kinds, case-insensitively like the matcher, and each one matches a statement', () => {
    for (const kind of ['DeleteStmt', 'deletestmt', 'DROPDBSTMT', 'CommonTableExpr', 'ReturnStmt']) {
      expect(sqlKindProblem(kind), kind).toBeUndefined();
      expect(matchesSome({ kinds: [kind] }), kind).toBe(true);
    }
  });

  it('refuse unknown kinds, with the nearest kind when there is one', () => {
    expect(sqlKindProblem('DeleteStatement')).toBe(
      'unknown statement kind "DeleteStatement" (did you mean "DeleteStmt"?)',
    );
    expect(sqlKindProblem('Delete')).toContain('(did you mean "DeleteStmt"?)');
    expect(sqlKindProblem('AlterTabelStmt')).toContain('(did you mean "AlterTableStmt"?)');
    // PostgreSQL's own names for some statements are not the SQL words.
    expect(sqlKindProblem('DropDatabaseStatement')).toContain('(did you mean "DropdbStmt"?)');
    expect(sqlKindProblem('CreateTable')).toContain('(did you mean "CreateStmt"?)');
    // No far-fetched guess: better none than AlterDatabaseStmt for this one.
    expect(sqlKindProblem('DropDatabaseRefresh')).toBe(
      'unknown statement kind "DropDatabaseRefresh" (kinds are libpg-query node names such as DeleteStmt, see docs/guardrails-sql.md)',
    );
    for (const kind of ['FuncCall', 'RawStmt', 'SetOperationStmt', 'PLAssignStmt', 'Banana']) {
      expect(sqlKindProblem(kind), kind).toMatch(/^unknown statement kind/);
    }
    expect(sqlKindProblem('Drop*')).toContain('no `*` wildcard');
    // What was refused would indeed never have matched.
    for (const kind of ['DeleteStatement', 'Delete', 'FuncCall', 'Drop*']) {
      expect(matchesSome({ kinds: [kind] }), kind).toBe(false);
    }
  });

  it('accept known tags, families and wildcards, and each one matches a statement', () => {
    const ok = [
      'delete-without-where',
      'DO-BLOCK',
      'language:plpgsql',
      'language:plpython3u',
      'language:*',
      'function:pg_read_file',
      'function:pg_catalog.pg_read_file',
      'contains:DeleteStmt',
      'contains:deletestmt',
      'contains:*',
      'contains:Delete*',
      '*-without-where',
      'lang*',
      '*3u',
      '*',
    ];
    for (const tag of ok) {
      expect(sqlTagProblem(tag), tag).toBeUndefined();
      expect(matchesSome({ tags: [tag] }), tag).toBe(true);
    }
    // Open families take any value: the server decides which languages and functions exist.
    expect(sqlTagProblem('language:plrust')).toBeUndefined();
    expect(sqlTagProblem('function:my_schema.my_func')).toBeUndefined();
  });

  it('refuse unknown tags and patterns no tag can match, with the nearest tag when there is one', () => {
    expect(sqlTagProblem('delete-without-were')).toBe(
      'unknown tag "delete-without-were" (did you mean "delete-without-where"?)',
    );
    expect(sqlTagProblem('do_block')).toContain('(did you mean "do-block"?)');
    expect(sqlTagProblem('langauge:c')).toContain('(did you mean "language:c"?)');
    expect(sqlTagProblem('contains:DeleteStatement')).toContain('(did you mean "contains:DeleteStmt"?)');
    expect(sqlTagProblem('languge:*')).toBe(
      'tag pattern "languge:*" matches no tag the SQL guard reports (did you mean "language:*"?)',
    );
    expect(sqlTagProblem('contains:Foo*')).toBe(
      'tag pattern "contains:Foo*" matches no tag the SQL guard reports (tags are listed in docs/guardrails-sql.md)',
    );
    for (const tag of [
      'language:',
      'function:',
      'contains:',
      'contains:FuncCall',
      'copy-*-program',
      'banana',
    ]) {
      expect(sqlTagProblem(tag), tag).toBeDefined();
    }
    for (const tag of ['delete-without-were', 'langauge:c', 'languge:*', 'contains:Foo*', 'copy-*-program']) {
      expect(matchesSome({ tags: [tag] }), tag).toBe(false);
    }
  });

  it('edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('abc', '')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });
});
