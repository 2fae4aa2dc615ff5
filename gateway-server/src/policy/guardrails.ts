import type { AccessLevel } from '@sallyport/protocol';
import type { GatewayConfig } from '../config/schema';
import { DEFAULT_SQL_RULES, type SqlRule } from '../protocols/postgres/guard/rules';
import { DEFAULT_SHELL_RULES, type ShellRule } from '../protocols/ssh/guard/rules';
import { targetMatches } from './evaluate';

/**
 * Which guardrail rules a session gets (config `guardrails`, docs/guardrails-sql.md and
 * docs/guardrails-shell.md): the built-in rules of its kind (unless `builtins: false`), then the
 * configured rules whose scope takes in its target (by id, or all given labels) and its access
 * level. A rule without `targets` applies to every target of its kind, one without `levels` at
 * every level. Decided once, when the session opens: a rule changed in the config applies to
 * sessions opened after the gateway restarts with it.
 */

export type GuardrailsConfig = GatewayConfig['guardrails'];

/** What scoping needs to know about a target (labels as stored; none is no labels). */
export interface GuardedTarget {
  id: string;
  labels?: Record<string, string> | null | undefined;
}

interface Scope {
  targets?: { ids: string[]; labels: Record<string, string> } | undefined;
  levels?: readonly string[] | undefined;
}

export function inScope(rule: Scope, target: GuardedTarget, level: AccessLevel): boolean {
  if (rule.levels && !rule.levels.includes(level)) return false;
  if (rule.targets) {
    // targetMatches reads ids and labels only; the kind is implied by the section.
    const facts = { id: target.id, kind: 'ssh' as const, labels: target.labels ?? {} };
    if (!targetMatches(rule.targets, facts)) return false;
  }
  return true;
}

/** The scope fields stripped: what the guard evaluates. */
function unscoped<R extends Scope>(rule: R): Omit<R, 'targets' | 'levels'> {
  const { targets: _t, levels: _l, ...plain } = rule;
  return plain;
}

function resolve<R extends Scope, P>(
  section: { builtins: boolean; rules: R[] },
  builtins: readonly P[],
  target: GuardedTarget,
  level: AccessLevel,
): Array<P | Omit<R, 'targets' | 'levels'>> {
  return [
    ...(section.builtins ? builtins : []),
    ...section.rules.filter((r) => inScope(r, target, level)).map(unscoped),
  ];
}

export interface Guardrails {
  /** The SQL rules for a session on `target` at `level` (read sessions also get the session's read-only rules). */
  sqlRules(target: GuardedTarget, level: AccessLevel): SqlRule[];
  /** The shell rules for a session on `target` at `level` (`shell` or `exec-only`); empty means no guard. */
  shellRules(target: GuardedTarget, level: AccessLevel): ShellRule[];
  /** Most rows one SQL statement sends. */
  readonly sqlMaxRows: number;
}

export function createGuardrails(config: GuardrailsConfig): Guardrails {
  return {
    sqlRules: (target, level) => resolve(config.sql, DEFAULT_SQL_RULES, target, level),
    shellRules: (target, level) => resolve(config.shell, DEFAULT_SHELL_RULES, target, level),
    sqlMaxRows: config.sql.maxRows,
  };
}
