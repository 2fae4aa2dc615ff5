// Config `guardrails`: the schema (errors name the path) and which rules a session gets
// (policy/guardrails.ts): built-ins, then config rules whose scope takes in the target and level.
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load';
import { createGuardrails, type GuardedTarget } from '../../src/policy/guardrails';
import {
  analyzeBatch,
  DEFAULT_SQL_RULES,
  evaluateBatch,
  initSqlParser,
} from '../../src/protocols/postgres/guard';
import {
  analyzeCommandLine,
  DEFAULT_SHELL_RULES,
  evaluateCommandLine,
  initShellParser,
} from '../../src/protocols/ssh/guard';

beforeAll(async () => {
  await Promise.all([initSqlParser(), initShellParser()]);
});

const base = 'identity:\n  devProvider: { enabled: true }\n';
const parse = (yaml: string) => parseConfig(`${base}${yaml}`, 'test.yaml', {});
const refused = (yaml: string) => {
  try {
    parse(yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected the config to be refused');
};

const EXAMPLE = `
guardrails:
  sql:
    maxRows: 500
    rules:
      - name: review-customer-updates
        action: review
        message: Changing customers on production needs approval.
        explain: true
        match: { kinds: [UpdateStmt, DeleteStmt], relations: [customers] }
        targets: { labels: { env: prod } }
        levels: [write, admin]
      - name: no-payroll
        action: block
        match: { relations: ["payroll.*"] }
        targets: { ids: [hr-db] }
      - name: read-write-override
        action: block
        match: { tags: [read-write-override] }
        levels: [read]
  shell:
    rules:
      - name: review-deploys
        action: review
        match: { commands: [deploy, "kubectl"], args: "(^|\\\\s)(apply|delete)(\\\\s|$)" }
        targets: { labels: { env: prod, team: payments } }
      - name: exec-no-git-push
        action: block
        match: { commands: [git], args: "^push" }
        levels: [exec-only]
`;

const prod: GuardedTarget = { id: 'orders-db', labels: { env: 'prod', team: 'payments' } };
const staging: GuardedTarget = { id: 'staging-db', labels: { env: 'staging' } };
const hr: GuardedTarget = { id: 'hr-db', labels: {} };
const names = (rules: Array<{ name: string }>) => rules.map((r) => r.name);
const builtinSql = names(DEFAULT_SQL_RULES);
const builtinShell = names(DEFAULT_SHELL_RULES);

describe('guardrails config', () => {
  it('defaults: built-in rules on for both kinds, no extra rules, a 10 000 row cap', () => {
    const cfg = parse('');
    expect(cfg.guardrails).toEqual({
      sql: { builtins: true, rules: [], maxRows: 10_000 },
      shell: { builtins: true, rules: [] },
    });
    const g = createGuardrails(cfg.guardrails);
    expect(g.sqlRules(prod, 'write')).toEqual(DEFAULT_SQL_RULES);
    expect(g.shellRules(prod, 'shell')).toEqual(DEFAULT_SHELL_RULES);
    expect(g.shellRules({ id: 'bare', labels: null }, 'exec-only')).toEqual(DEFAULT_SHELL_RULES);
    expect(g.sqlMaxRows).toBe(10_000);
  });

  it('scopes config rules by target id, by all given labels and by level, after the built-ins', () => {
    const g = createGuardrails(parse(EXAMPLE).guardrails);
    expect(g.sqlMaxRows).toBe(500);
    // Labels env=prod at write: the customers rule; no payroll (other id), no read-level rule.
    expect(names(g.sqlRules(prod, 'write'))).toEqual([...builtinSql, 'review-customer-updates']);
    expect(names(g.sqlRules(prod, 'read'))).toEqual([...builtinSql, 'read-write-override']);
    expect(names(g.sqlRules(staging, 'write'))).toEqual(builtinSql);
    expect(names(g.sqlRules(staging, 'read'))).toEqual([...builtinSql, 'read-write-override']);
    expect(names(g.sqlRules(hr, 'admin'))).toEqual([...builtinSql, 'no-payroll']);
    // All labels must match: env=prod alone is not enough for the payments rule.
    expect(names(g.shellRules(prod, 'shell'))).toEqual([...builtinShell, 'review-deploys']);
    expect(names(g.shellRules({ id: 'web', labels: { env: 'prod' } }, 'shell'))).toEqual(builtinShell);
    expect(names(g.shellRules({ id: 'web', labels: { env: 'prod' } }, 'exec-only'))).toEqual([
      ...builtinShell,
      'exec-no-git-push',
    ]);
    // What the guard gets is a plain rule: the scope is gone.
    const rule = g.sqlRules(prod, 'write').at(-1);
    expect(rule).toEqual({
      name: 'review-customer-updates',
      action: 'review',
      message: 'Changing customers on production needs approval.',
      explain: true,
      match: { kinds: ['UpdateStmt', 'DeleteStmt'], relations: ['customers'] },
    });
  });

  it('the resolved rules decide verdicts on one target and not on another', () => {
    const g = createGuardrails(parse(EXAMPLE).guardrails);
    const sql = (target: GuardedTarget, level: 'read' | 'write', text: string) =>
      evaluateBatch(analyzeBatch(text), g.sqlRules(target, level));
    const update = "update customers set country = 'DE' where id = 7";
    expect(sql(prod, 'write', update)).toMatchObject({
      action: 'review',
      rule: 'review-customer-updates',
      explain: true,
    });
    expect(sql(staging, 'write', update).action).toBe('allow');
    expect(sql(hr, 'write', 'select * from payroll.salaries')).toMatchObject({ action: 'block' });
    expect(sql(prod, 'write', 'select * from payroll.salaries').action).toBe('allow');

    const sh = (target: GuardedTarget, level: 'shell' | 'exec-only', line: string) =>
      evaluateCommandLine(
        analyzeCommandLine(line, { interactive: level === 'shell' }),
        g.shellRules(target, level),
      );
    expect(sh(prod, 'shell', 'kubectl apply -f app.yaml')).toMatchObject({
      action: 'review',
      rule: 'review-deploys',
    });
    expect(sh(staging, 'shell', 'kubectl apply -f app.yaml').action).toBe('allow');
    expect(sh(staging, 'exec-only', 'git push origin main')).toMatchObject({
      action: 'block',
      rule: 'exec-no-git-push',
    });
    expect(sh(staging, 'shell', 'git push origin main').action).toBe('allow');
  });

  it('builtins: false leaves only the config rules (none at all where none is in scope)', () => {
    const g = createGuardrails(
      parse(`
guardrails:
  sql:
    builtins: false
    rules:
      - { name: truncate, action: block, match: { kinds: [TruncateStmt] }, targets: { ids: [orders-db] } }
  shell:
    builtins: false
`).guardrails,
    );
    expect(names(g.sqlRules(prod, 'write'))).toEqual(['truncate']);
    expect(g.sqlRules(staging, 'write')).toEqual([]);
    expect(g.shellRules(prod, 'shell')).toEqual([]);
  });

  it('refuses bad rules with the path and the line', () => {
    const one = (rule: string, kind: 'sql' | 'shell' = 'sql') =>
      refused(`guardrails:\n  ${kind}:\n    rules:\n      - ${rule}\n`).problems;
    expect(one('{ name: x, action: allow, match: {} }')).toEqual([
      expect.objectContaining({ path: 'guardrails.sql.rules[0].action', line: 6 }),
    ]);
    expect(one('{ name: x, action: allow, match: {} }')[0]?.message).toMatch(/block.*review/);
    expect(one('{ name: "", action: block, match: {} }')).toEqual([
      expect.objectContaining({ path: 'guardrails.sql.rules[0].name' }),
    ]);
    expect(one('{ action: block, match: {} }')).toEqual([
      expect.objectContaining({ path: 'guardrails.sql.rules[0].name' }),
    ]);
    expect(one('{ name: x, action: block }')).toEqual([
      expect.objectContaining({ path: 'guardrails.sql.rules[0].match' }),
    ]);
    // A misspelt criterion is an error, not a rule that matches every statement.
    expect(one('{ name: x, action: block, match: { kind: [DropStmt] } }')).toEqual([
      expect.objectContaining({ path: 'guardrails.sql.rules[0].match', message: 'unknown key(s): kind' }),
    ]);
    expect(one('{ name: x, action: block, match: {}, scope: { levels: [read] } }')[0]?.message).toBe(
      'unknown key(s): scope',
    );
    // Levels of the other kind.
    expect(one('{ name: x, action: block, match: {}, levels: [shell] }')).toEqual([
      expect.objectContaining({ path: 'guardrails.sql.rules[0].levels[0]' }),
    ]);
    expect(one('{ name: x, action: block, match: {}, levels: [write] }', 'shell')).toEqual([
      expect.objectContaining({ path: 'guardrails.shell.rules[0].levels[0]' }),
    ]);
    // An empty selector would silently mean "every target".
    expect(one('{ name: x, action: block, match: {}, targets: {} }')[0]?.message).toContain(
      'an empty selector would match every target',
    );
    expect(one('{ name: x, action: block, match: { args: "(a+)+" } }', 'shell')).toEqual([
      expect.objectContaining({
        path: 'guardrails.shell.rules[0].match.args',
        message: expect.stringContaining('catastrophic backtracking'),
      }),
    ]);
    expect(refused('guardrails: { sql: { maxRows: 0 } }\n').problems[0]?.path).toBe('guardrails.sql.maxRows');
    expect(refused('guardrails: { ssh: {} }\n').problems[0]?.message).toBe('unknown key(s): ssh');
  });

  it('refuses duplicate rule names, and names of built-in rules while those are on', () => {
    const dup = refused(`guardrails:
  shell:
    rules:
      - { name: no-git, action: block, match: { commands: [git] } }
      - { name: no-git, action: review, match: { commands: [git] } }
`);
    expect(dup.message).toContain(
      'line 7: guardrails.shell.rules[1].name: duplicate rule name "no-git" (also guardrails.shell.rules[0])',
    );
    const clash = refused(`guardrails:
  sql:
    rules:
      - { name: truncate, action: block, match: { kinds: [TruncateStmt] } }
`);
    expect(clash.problems).toEqual([
      expect.objectContaining({
        path: 'guardrails.sql.rules[0].name',
        message: expect.stringContaining('"truncate" is the name of a built-in sql rule'),
      }),
    ]);
    // The same name is fine for the other kind.
    expect(() =>
      parse(`guardrails:
  shell:
    rules:
      - { name: truncate, action: block, match: { commands: [truncate] } }
`),
    ).not.toThrow();
  });
  it('refuses unknown statement kinds and tags, naming the value, its place and the nearest match', () => {
    const err = refused(`guardrails:
  sql:
    rules:
      - name: typos
        action: block
        match:
          kinds: [DropStmt, DeleteStatement]
          tags: [do-block, delete-without-were, "languge:*"]
`);
    expect(err.problems).toEqual([
      {
        path: 'guardrails.sql.rules[0].match.kinds[1]',
        message: 'unknown statement kind "DeleteStatement" (did you mean "DeleteStmt"?)',
        line: 9,
        column: expect.any(Number),
      },
      {
        path: 'guardrails.sql.rules[0].match.tags[1]',
        message: 'unknown tag "delete-without-were" (did you mean "delete-without-where"?)',
        line: 10,
        column: expect.any(Number),
      },
      {
        path: 'guardrails.sql.rules[0].match.tags[2]',
        message: 'tag pattern "languge:*" matches no tag the SQL guard reports (did you mean "language:*"?)',
        line: 10,
        column: expect.any(Number),
      },
    ]);
    expect(err.message).toContain(
      'line 9: guardrails.sql.rules[0].match.kinds[1]: unknown statement kind "DeleteStatement" (did you mean "DeleteStmt"?)',
    );
    // One problem per bad value; an empty one is reported once (by min(1)), not twice.
    expect(
      refused('guardrails: { sql: { rules: [{ name: x, action: block, match: { kinds: [""] } }] } }\n')
        .problems,
    ).toHaveLength(1);
  });

  it('accepts known kinds (any case), tags, families and wildcards, and they match', () => {
    const cfg = parse(`guardrails:
  sql:
    rules:
      - { name: k, action: block, match: { kinds: [deletestmt, CommonTableExpr, ReturnStmt] } }
      - name: t
        action: review
        match:
          tags: [delete-without-where, "language:*", language:plrust, "function:my_schema.*", "contains:Delete*", "*-without-where"]
`);
    const g = createGuardrails(cfg.guardrails);
    const rules = g.sqlRules(prod, 'write').filter((r) => r.name === 'k' || r.name === 't');
    expect(names(rules)).toEqual(['k', 't']);
    expect(evaluateBatch(analyzeBatch('delete from t where id = 1'), rules)).toMatchObject({
      action: 'block',
      rule: 'k',
    });
    expect(evaluateBatch(analyzeBatch('update t set a = 1'), rules)).toMatchObject({
      action: 'review',
      rule: 't',
    });
    expect(evaluateBatch(analyzeBatch('DO LANGUAGE plrust $$ x $$'), rules)).toMatchObject({ rule: 't' });
  });

  it('the shipped sallyport.dev.yaml and the guardrails examples in the docs still load', () => {
    const root = new URL('../../../', import.meta.url);
    const dev = loadConfigFile(new URL('sallyport.dev.yaml', root).pathname, {});
    expect(dev.guardrails.sql.rules.length).toBeGreaterThan(0);
    const docs = new URL('docs/', root);
    const examples = readdirSync(docs)
      .filter((f) => f.endsWith('.md'))
      .flatMap((f) =>
        [...readFileSync(new URL(f, docs), 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)]
          .map((m) => m[1] ?? '')
          .filter((yaml) => /^guardrails:/m.test(yaml))
          .map((yaml) => ({ f, yaml })),
      );
    expect(examples.map((e) => e.f).sort()).toEqual(['guardrails-shell.md', 'guardrails-sql.md']);
    for (const { f, yaml } of examples) {
      const cfg = parse(yaml);
      expect(cfg.guardrails.sql.rules.length + cfg.guardrails.shell.rules.length, f).toBeGreaterThan(0);
    }
  });
});
