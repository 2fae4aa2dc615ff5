// The words a configured SQL rule may use in `match.kinds` and `match.tags`, checked when the
// config loads: a misspelt kind or tag would otherwise be a rule that silently never matches,
// which for a `block` rule means the guard is quietly off. Matching itself is in rules.ts; the
// checks here follow its semantics (kinds exact but case-insensitive, tags with a `*` wildcard,
// case-insensitive).

import { SQL_TAG_FAMILIES, SQL_TAGS } from './analyze';
import { SQL_STATEMENT_KINDS } from './node-kinds';
import { glob } from './rules';

const KINDS = new Map<string, string>(SQL_STATEMENT_KINDS.map((k) => [k.toLowerCase(), k]));
/** Families whose value is free (`language:<lang>`, `function:<name>`); `contains:` takes a kind. */
const OPEN_FAMILIES = SQL_TAG_FAMILIES.filter((f) => f !== 'contains:');
/** Every tag with a closed set of values: the fixed tags and `contains:<Kind>`. */
const CLOSED_TAGS: readonly string[] = [...SQL_TAGS, ...SQL_STATEMENT_KINDS.map((k) => `contains:${k}`)];
const FIXED_TAGS = new Set<string>(SQL_TAGS);

const DOCS = 'docs/guardrails-sql.md';

/** Why `kind` can never match a statement (with a suggestion), or undefined for a known kind. */
export function sqlKindProblem(kind: string): string | undefined {
  if (KINDS.has(kind.toLowerCase())) return undefined;
  if (kind.includes('*')) {
    return `statement kinds take no \`*\` wildcard: "${kind}" (name each kind, e.g. DropStmt)`;
  }
  return `unknown statement kind "${kind}"${suggestion(closestKind(kind), `kinds are libpg-query node names such as DeleteStmt, see ${DOCS}`)}`;
}

/** Why the tag pattern can never match a reported tag (with a suggestion), or undefined. */
export function sqlTagProblem(pattern: string): string | undefined {
  if (pattern.includes('*')) {
    if (patternCanMatch(pattern)) return undefined;
    return `tag pattern "${pattern}" matches no tag the SQL guard reports${suggestion(closestTag(pattern), `tags are listed in ${DOCS}`)}`;
  }
  if (isKnownTag(pattern)) return undefined;
  return `unknown tag "${pattern}"${suggestion(closestTag(pattern), `tags are listed in ${DOCS}`)}`;
}

function suggestion(guess: string | undefined, otherwise: string): string {
  return guess === undefined ? ` (${otherwise})` : ` (did you mean "${guess}"?)`;
}

function isKnownTag(tag: string): boolean {
  const t = tag.toLowerCase();
  if (FIXED_TAGS.has(t)) return true;
  const family = SQL_TAG_FAMILIES.find((f) => t.startsWith(f));
  if (family === undefined || t.length === family.length) return false;
  return family === 'contains:' ? KINDS.has(t.slice(family.length)) : true;
}

/**
 * Whether some tag the analyser can report matches the pattern: one of the closed tags, or one of
 * an open family. For the latter the literal text before the first `*` decides: if it extends the
 * family prefix ('language:pl*') or is the start of it ('lang*', '*u'), the `*` can supply the
 * rest, so a matching tag exists.
 */
function patternCanMatch(pattern: string): boolean {
  const re = glob(pattern);
  if (CLOSED_TAGS.some((t) => re.test(t))) return true;
  const head = pattern.slice(0, pattern.indexOf('*')).toLowerCase();
  return OPEN_FAMILIES.some((f) => head.startsWith(f) || f.startsWith(head));
}

// ---- suggestions ------------------------------------------------------------------------------

/** Node names that do not follow the SQL words, for the suggestion (keys as normalised below). */
const KIND_ALIASES: Record<string, string> = {
  createtablestmt: 'CreateStmt',
  createindexstmt: 'IndexStmt',
  createviewstmt: 'ViewStmt',
  createdatabasestmt: 'CreatedbStmt',
  dropdatabasestmt: 'DropdbStmt',
  droptablestmt: 'DropStmt',
  setstmt: 'VariableSetStmt',
  showstmt: 'VariableShowStmt',
};

function closestKind(kind: string): string | undefined {
  // 'DeleteStatement' and 'Delete' are common ways to miss 'DeleteStmt'.
  const w = kind.toLowerCase().replace(/statement$/, 'stmt');
  const variants = w.endsWith('stmt') ? [w] : [w, `${w}stmt`];
  const alias = variants.map((v) => KIND_ALIASES[v]).find((k) => k !== undefined);
  return alias ?? closest(variants, Math.min(...variants.map((v) => v.length)), SQL_STATEMENT_KINDS);
}

function closestTag(tag: string): string | undefined {
  const colon = tag.indexOf(':');
  if (colon < 0) return closest([tag.toLowerCase()], tag.length, SQL_TAGS);
  // 'langauge:plpgsql' → 'language:plpgsql'; 'contains:DeleteStatement' → 'contains:DeleteStmt'.
  const prefix = tag.slice(0, colon + 1).toLowerCase();
  const family = closest([prefix], prefix.length, SQL_TAG_FAMILIES);
  const value = tag.slice(colon + 1);
  if (family === undefined || value === '') return undefined;
  let guess: string | undefined = `${family}${value}`;
  if (family === 'contains:' && !value.includes('*')) {
    const kind = KINDS.get(value.toLowerCase()) ?? closestKind(value);
    guess = kind === undefined ? undefined : `${family}${kind}`;
  }
  return guess?.toLowerCase() === tag.toLowerCase() ? undefined : guess;
}

/**
 * The candidate nearest to any of the (lower-cased) variants, if near enough to be a typo: an
 * edit distance of at most a quarter of the word's length (at least 2), so that a far-fetched
 * guess ('DropDatabaseStmt' → 'AlterDatabaseStmt') is not offered. Ties go to the first.
 */
function closest(variants: string[], length: number, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(length / 4)) + 1;
  for (const candidate of candidates) {
    const c = candidate.toLowerCase();
    for (const v of variants) {
      const d = editDistance(v, c);
      if (d < bestDistance) {
        best = candidate;
        bestDistance = d;
      }
    }
  }
  return best;
}

/** Levenshtein distance (insert, delete, substitute), two rows. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
