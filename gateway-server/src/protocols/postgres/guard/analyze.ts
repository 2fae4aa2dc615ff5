// SQL batch analysis with PostgreSQL's own grammar (libpg-query, PostgreSQL 18 parser in WASM).
//
// Pure: no network, no database. The PostgreSQL protocol handler calls `analyzeBatch` on every
// batch (simple query string, or each Parse message) before anything reaches the target, and
// `evaluateBatch` (rules.ts) turns the analysis into allow / review / block.
//
// What the parser gives us for free: comments (`--`, nested `/* /* */ */`), dollar quoting
// (`$$…$$`, `$tag$…$tag$`), E'' strings, quoted identifiers and case folding are all resolved by
// the real lexer, so string contents never look like statements and `dRoP dAtAbAsE` is a
// DropdbStmt. Anything the grammar rejects is reported as an error (with the parser's position)
// and the evaluator blocks it.
//
// `readOnly` is a hint derived from the statement kind. It is NOT the enforcement of the `read`
// access level: that is a read-only transaction in PostgreSQL itself, because functions (even in a
// plain SELECT) can have side effects that no static analysis can see.

import { loadModule, parsePlPgSQLSync, parseSync, scanSync } from 'libpg-query';

export interface StatementInfo {
  /** 0-based position in the batch. */
  index: number;
  /** The statement's own source text (from stmt_location/stmt_len), trimmed, without the `;`. */
  text: string;
  /** libpg-query node name of the top-level statement: 'SelectStmt', 'DeleteStmt', 'DropdbStmt', … */
  kind: string;
  /**
   * Derived facts. Documented in docs/guardrails-sql.md. Among them:
   * 'delete-without-where', 'update-without-where', 'copy-program', 'copy-to-file', 'copy-from-file',
   * 'do-block', 'dynamic-sql', 'dynamic-config', 'set-role', 'set-session-authorization',
   * 'set-search-path', 'read-write-override', 'writable-cte', 'select-into', 'locking-read',
   * 'explain-analyze', 'language:<lang>', 'body-unparsed', 'contains:<NodeName>' for every statement
   * node nested inside this one, and 'function:<name>' + 'function:<schema>.<name>' for every call.
   */
  tags: string[];
  /** Every table/view touched ('schema.table' when qualified, else 'table'), lower-cased. CTE references are excluded. */
  relations: string[];
  /** True only for statements whose kind provably cannot write (see readOnlyOf). A hint, not the enforcement. */
  readOnly: boolean;
}

/**
 * Every fixed tag this file can report. Config rules are checked against it (guard/vocabulary.ts),
 * so a tag added below must be added here too (test/unit/sql-guard-vocabulary.test.ts checks).
 */
export const SQL_TAGS = [
  'body-unparsed',
  'copy-from-file',
  'copy-program',
  'copy-to-file',
  'delete-without-where',
  'do-block',
  'dynamic-config',
  'dynamic-sql',
  'explain-analyze',
  'locking-read',
  'read-write-override',
  'select-into',
  'set-role',
  'set-search-path',
  'set-session-authorization',
  'update-without-where',
  'writable-cte',
] as const;

/**
 * Tag families: the prefix, then a value. `language:<lang>` and `function:<name>` take any value;
 * `contains:<Kind>` only statement kinds (node-kinds.ts).
 */
export const SQL_TAG_FAMILIES = ['contains:', 'function:', 'language:'] as const;

export type BatchAnalysis =
  | { ok: true; statements: StatementInfo[] }
  | { ok: false; error: { message: string; position?: number /* 1-based character offset */ } };

let ready: Promise<void> | undefined;
let loaded = false;

/** Loads the parser (WASM). Idempotent; must be awaited once before `analyzeBatch`. */
export function initSqlParser(): Promise<void> {
  ready ??= loadModule().then(
    () => {
      loaded = true;
    },
    (err: unknown) => {
      ready = undefined;
      throw err;
    },
  );
  return ready;
}

/** Functions that run a SQL string they receive as an argument (besides dblink*, blocked by default). */
const SQL_EXECUTING_FUNCTIONS = new Set([
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'ts_stat',
]);
const DML_KINDS = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);
const UNSAFE_FOR_READ_ONLY = [
  'dynamic-sql',
  'dynamic-config',
  'read-write-override',
  'set-role',
  'set-session-authorization',
];
const RELATION_OBJECT_TYPES = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_SEQUENCE',
]);
/** DefElems of CREATE OPERATOR / AGGREGATE / TYPE that name a support function. */
const FUNCTION_DEFINITION_OPTIONS = new Set([
  'function',
  'procedure',
  'restrict',
  'join',
  'sfunc',
  'finalfunc',
  'combinefunc',
  'serialfunc',
  'deserialfunc',
  'msfunc',
  'minvfunc',
  'mfinalfunc',
  'input',
  'output',
  'receive',
  'send',
  'typmod_in',
  'typmod_out',
  'analyze',
  'subscript',
  'canonical',
  'subtype_diff',
]);
/** Nested parsing (DO bodies, EXECUTE 'literal', function bodies) stops at this depth. */
const MAX_NESTED_PARSE_DEPTH = 4;

type Obj = Record<string, unknown>;

interface Collector {
  tags: Set<string>;
  relations: Set<string>;
  depth: number;
}

/**
 * Parses a batch and describes each statement. Never throws for bad SQL: the error comes back as
 * `{ ok: false }`. Empty, whitespace-only and comment-only batches are `{ ok: true, statements: [] }`
 * (PostgreSQL answers them with EmptyQueryResponse). Throws only if `initSqlParser` was not awaited.
 * A text seen recently gets the same (frozen) analysis back without being parsed again.
 */
export function analyzeBatch(sql: string): BatchAnalysis {
  if (!loaded) throw new Error('initSqlParser() must be awaited before analyzeBatch()');
  if (sql.length > CACHED_TEXT_MAX) return deepFreeze(analyzeUncached(sql));
  const hit = recent.get(sql);
  if (hit) {
    recent.delete(sql); // most recently used last
    recent.set(sql, hit);
    return hit;
  }
  const analysis = deepFreeze(analyzeUncached(sql));
  recent.set(sql, analysis);
  if (recent.size > CACHED_BATCHES) recent.delete(recent.keys().next().value as string);
  return analysis;
}

/**
 * Analyses of recent batches by exact text: applications and jobs send the same statements again
 * and again, and parsing is most of the guard's cost. The analysis depends on the text alone (the
 * rules are applied afterwards, per session); results are frozen because every session shares them.
 */
const recent = new Map<string, BatchAnalysis>();
const CACHED_BATCHES = 500;
const CACHED_TEXT_MAX = 4096;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function analyzeUncached(sql: string): BatchAnalysis {
  if (sql.includes('\0')) {
    // The C parser would stop at the NUL and never see what follows it.
    return {
      ok: false,
      error: { message: 'SQL text contains a NUL character', position: sql.indexOf('\0') + 1 },
    };
  }
  if (sql.trim() === '') return { ok: true, statements: [] };
  let raw: Obj[];
  try {
    raw = (parseSync(sql) as unknown as { stmts?: Obj[] }).stmts ?? [];
  } catch (err) {
    return { ok: false, error: parserError(err) };
  }
  try {
    const bytes = Buffer.from(sql, 'utf8');
    const statements = raw.map((entry, index) => {
      const location = num(entry.stmt_location);
      const length = num(entry.stmt_len);
      // Locations are byte offsets into the UTF-8 text; a missing/zero length means "to the end".
      const text = bytes
        .subarray(location, length > 0 ? location + length : bytes.length)
        .toString('utf8')
        .trim();
      const [kind, body] = unwrap(entry.stmt);
      return describe(index, text, kind, body);
    });
    return { ok: true, statements };
  } catch (err) {
    // A tree too deep for the walker (or anything unexpected) fails closed.
    return { ok: false, error: { message: `statement could not be analysed: ${errorMessage(err)}` } };
  }
}

function describe(index: number, text: string, kind: string, body: Obj): StatementInfo {
  const c: Collector = { tags: new Set(), relations: new Set(), depth: 0 };
  visitNode(kind, body, c, new Set(), '', true, text);
  return {
    index,
    text,
    kind,
    tags: [...c.tags],
    relations: [...c.relations],
    readOnly: readOnlyOf(kind, body, c.tags),
  };
}

// ---------------------------------------------------------------------------------------------
// Generic walk. libpg-query's JSON wraps every `Node *` as `{ NodeName: {...fields} }`; fields
// whose C type is a concrete struct (RangeVar *, IntoClause *, WithClause *, FuncCall *) appear
// unwrapped. Node names start with an upper-case letter; field names never do.

function walk(value: unknown, c: Collector, scope: ReadonlySet<string>, key: string): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, c, scope, key);
    return;
  }
  if (!isObj(value)) return;
  if (typeof value.relname === 'string' && 'relpersistence' in value) {
    addRelation(value, c, scope, key); // unwrapped RangeVar (relation, rel, …)
    return;
  }
  if (key === 'funccall') {
    visitNode('FuncCall', value, c, scope, key, false, ''); // CallStmt.funccall
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    if (/^[A-Z]/.test(k) && isObj(v)) visitNode(k, v, c, scope, key, false, '');
    else walk(v, c, scope, k);
  }
}

function visitNode(
  type: string,
  node: Obj,
  c: Collector,
  outerScope: ReadonlySet<string>,
  key: string,
  top: boolean,
  text: string,
): void {
  if (!top && type.endsWith('Stmt')) c.tags.add(`contains:${type}`);
  switch (type) {
    case 'RangeVar':
      addRelation(node, c, outerScope, key);
      return;
    case 'FuncCall':
      onFuncCall(node, c);
      break;
    case 'DeleteStmt':
      if (!meaningfulWhere(node.whereClause)) c.tags.add('delete-without-where');
      break;
    case 'UpdateStmt':
      if (!meaningfulWhere(node.whereClause)) c.tags.add('update-without-where');
      break;
    case 'SelectStmt':
      if (node.intoClause) c.tags.add('select-into');
      if (Array.isArray(node.lockingClause) && node.lockingClause.length > 0) c.tags.add('locking-read');
      break;
    case 'CopyStmt':
      if (node.is_program) c.tags.add('copy-program');
      else if (typeof node.filename === 'string')
        c.tags.add(node.is_from ? 'copy-from-file' : 'copy-to-file');
      break;
    case 'ExplainStmt':
      if (defElems(node.options).some((d) => d.defname === 'analyze' && defBool(d, true))) {
        c.tags.add('explain-analyze');
      }
      break;
    case 'DropStmt':
    case 'CommentStmt':
      // DROP TABLE / COMMENT ON TABLE name their relations as plain name lists, not RangeVars.
      if (RELATION_OBJECT_TYPES.has(String(node.removeType ?? node.objtype))) {
        const objects =
          type === 'DropStmt' ? (Array.isArray(node.objects) ? node.objects : []) : [node.object];
        for (const name of objects) addNameList(name, c);
      }
      break;
    case 'DefineStmt':
    case 'CreateTrigStmt':
    case 'CreateEventTrigStmt':
    case 'CreateCastStmt':
    case 'CreateTransformStmt':
      onFunctionBinding(type, node, c);
      break;
    case 'ExecuteStmt':
      c.tags.add('dynamic-sql');
      break;
    case 'DoStmt':
      onDo(node, c);
      break;
    case 'CreateFunctionStmt':
      onCreateFunction(node, c, text);
      break;
    case 'VariableSetStmt':
      onVariableSet(node, c);
      break;
    case 'TransactionStmt':
      if (defElems(node.options).some((d) => d.defname === 'transaction_read_only' && !defBool(d, true))) {
        c.tags.add('read-write-override');
      }
      break;
    case 'DiscardStmt':
      if (node.target === 'DISCARD_ALL') {
        // DISCARD ALL = SET SESSION AUTHORIZATION DEFAULT + RESET ALL + …
        c.tags.add('set-session-authorization');
        c.tags.add('read-write-override');
      }
      break;
  }
  walkWithScope(node, c, outerScope);
}

/** Walks a node's fields, opening a CTE scope when it has a WITH clause. */
function walkWithScope(node: Obj, c: Collector, outerScope: ReadonlySet<string>): void {
  const withClause = node.withClause;
  if (!isObj(withClause)) {
    for (const [k, v] of Object.entries(node)) walk(v, c, outerScope, k);
    return;
  }
  const ctes = (Array.isArray(withClause.ctes) ? withClause.ctes : [])
    .map((n) => (isObj(n) && isObj(n.CommonTableExpr) ? n.CommonTableExpr : undefined))
    .filter((n): n is Obj => n !== undefined);
  const names = ctes.map((cte) => String(cte.ctename ?? ''));
  const all = new Set([...outerScope, ...names]);
  // Non-recursive WITH: each CTE sees the ones before it. RECURSIVE: all of them.
  ctes.forEach((cte, i) => {
    const scope = withClause.recursive ? all : new Set([...outerScope, ...names.slice(0, i)]);
    const [innerKind] = unwrap(cte.ctequery);
    if (DML_KINDS.has(innerKind)) c.tags.add('writable-cte');
    c.tags.add('contains:CommonTableExpr');
    walk(cte, c, scope, 'ctequery');
  });
  for (const [k, v] of Object.entries(node)) {
    if (k !== 'withClause') walk(v, c, all, k);
  }
}

function addRelation(rv: Obj, c: Collector, scope: ReadonlySet<string>, key: string): void {
  const relname = String(rv.relname);
  const schema = typeof rv.schemaname === 'string' ? rv.schemaname : undefined;
  const catalog = typeof rv.catalogname === 'string' ? rv.catalogname : undefined;
  // An unqualified name in FROM that matches a CTE in scope is the CTE, not a table. The target of
  // INSERT/UPDATE/DELETE/MERGE/COPY (`relation`) and of SELECT INTO (`rel`) is always a real table.
  if (!schema && !catalog && key !== 'relation' && key !== 'rel' && scope.has(relname)) return;
  c.relations.add(
    [catalog, schema, relname]
      .filter((p) => p !== undefined)
      .join('.')
      .toLowerCase(),
  );
}

function addNameList(node: unknown, c: Collector): void {
  const items = isObj(node) && isObj(node.List) && Array.isArray(node.List.items) ? node.List.items : [];
  const parts = items.map(constStringNode);
  if (parts.length > 0 && parts.every((p) => p !== undefined)) c.relations.add(parts.join('.').toLowerCase());
}

/** Adds 'function:<name>' and, when qualified, 'function:<schema>.<name>' from a list of String nodes. */
function addFunction(nameList: unknown, c: Collector): string {
  const parts = (Array.isArray(nameList) ? nameList : []).map((p) =>
    (constStringNode(p) ?? '').toLowerCase(),
  );
  const name = parts[parts.length - 1] ?? '';
  if (name === '') return name;
  c.tags.add(`function:${name}`);
  if (parts.length > 1) c.tags.add(`function:${parts.join('.')}`);
  return name;
}

/**
 * Functions bound by CREATE OPERATOR / AGGREGATE / TYPE / CAST / TRIGGER / EVENT TRIGGER run later,
 * whenever the operator, aggregate, type, cast or trigger is used: they are reported like calls.
 */
function onFunctionBinding(type: string, node: Obj, c: Collector): void {
  if (type === 'DefineStmt') {
    for (const d of defElems(node.definition)) {
      if (d.defname && FUNCTION_DEFINITION_OPTIONS.has(d.defname) && isObj(d.arg) && isObj(d.arg.TypeName)) {
        addFunction(d.arg.TypeName.names, c);
      }
    }
  } else if (type === 'CreateTrigStmt' || type === 'CreateEventTrigStmt') {
    addFunction(node.funcname, c);
  } else if (isObj(node.fromsql) || isObj(node.tosql) || isObj(node.func)) {
    for (const f of [node.func, node.fromsql, node.tosql]) if (isObj(f)) addFunction(f.objname, c);
  }
}

function onFuncCall(node: Obj, c: Collector): void {
  const name = addFunction(node.funcname, c);
  const args = Array.isArray(node.args) ? node.args : [];
  if (name === 'set_config') {
    const guc = constString(args[0]);
    if (guc === undefined) c.tags.add('dynamic-config');
    else onGuc(guc.toLowerCase(), constString(args[1]), c);
  }
  if (SQL_EXECUTING_FUNCTIONS.has(name)) {
    c.tags.add('dynamic-sql');
    const query = constString(args[0]);
    if (query !== undefined) analyseNested(query, c);
  }
}

function onVariableSet(node: Obj, c: Collector): void {
  const kind = String(node.kind ?? '');
  if (kind === 'VAR_RESET_ALL') {
    c.tags.add('read-write-override'); // may undo a session-level default_transaction_read_only
    return;
  }
  const name = String(node.name ?? '').toLowerCase();
  if (kind === 'VAR_SET_MULTI') {
    // SET TRANSACTION … / SET SESSION CHARACTERISTICS AS TRANSACTION …
    if (defElems(node.args).some((d) => d.defname === 'transaction_read_only' && !defBool(d, true))) {
      c.tags.add('read-write-override');
    }
    return;
  }
  const args = Array.isArray(node.args) ? node.args : [];
  onGuc(name, kind === 'VAR_SET_VALUE' ? constString(args[0]) : undefined, c);
}

/** Classifies a change of a run-time parameter; `value` undefined means RESET / DEFAULT / unknown. */
function onGuc(name: string, value: string | undefined, c: Collector): void {
  if (name === 'role') c.tags.add('set-role');
  else if (name === 'session_authorization') c.tags.add('set-session-authorization');
  else if (name === 'search_path') c.tags.add('set-search-path');
  else if (name === 'default_transaction_read_only' || name === 'transaction_read_only') {
    if (value === undefined || !parseBool(value, true)) c.tags.add('read-write-override');
  }
}

function onDo(node: Obj, c: Collector): void {
  c.tags.add('do-block');
  // The body runs as procedural code: what it executes at run time cannot be known statically.
  c.tags.add('dynamic-sql');
  const opts = defElems(node.args);
  const language = (defString(opts.find((d) => d.defname === 'language')) ?? 'plpgsql').toLowerCase();
  c.tags.add(`language:${language}`);
  const body = defString(opts.find((d) => d.defname === 'as'));
  if (language !== 'plpgsql' || typeof body !== 'string') {
    c.tags.add('body-unparsed');
    return;
  }
  // Best effort: what the body says statically (EXECUTE of a literal included) is still reported.
  analysePlpgsql(plpgsqlWrapper(body), c);
}

function plpgsqlWrapper(body: string): string {
  return `CREATE FUNCTION sallyport_body() RETURNS void LANGUAGE plpgsql AS '${body.replaceAll("'", "''")}'`;
}

function onCreateFunction(node: Obj, c: Collector, text: string): void {
  const opts = defElems(node.options);
  const language = (defString(opts.find((d) => d.defname === 'language')) ?? 'sql').toLowerCase();
  c.tags.add(`language:${language}`);
  if (node.sql_body) return; // BEGIN ATOMIC / RETURN bodies are already in the tree and walked.
  const as = opts.find((d) => d.defname === 'as')?.arg;
  const items = isObj(as) && isObj(as.List) && Array.isArray(as.List.items) ? as.List.items : [];
  const body = items.length === 1 ? constStringNode(items[0]) : undefined;
  if (language === 'sql' && body !== undefined) {
    analyseNested(body, c);
  } else if (language === 'plpgsql' && body !== undefined) {
    // The statement's own text keeps the parameter declarations; nested ones get a wrapper.
    analysePlpgsql(text !== '' ? text : plpgsqlWrapper(body), c);
  } else {
    c.tags.add('body-unparsed');
    c.tags.add('dynamic-sql');
  }
}

/** Parses PL/pgSQL (a CREATE FUNCTION text) and analyses every SQL expression in it. */
function analysePlpgsql(createFunctionSql: string, c: Collector): void {
  if (c.depth >= MAX_NESTED_PARSE_DEPTH) {
    c.tags.add('body-unparsed');
    c.tags.add('dynamic-sql');
    return;
  }
  let tree: unknown;
  try {
    tree = parsePlPgSQLSync(createFunctionSql);
  } catch {
    c.tags.add('body-unparsed');
    c.tags.add('dynamic-sql');
    return;
  }
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) visit(v);
      return;
    }
    if (!isObj(value)) return;
    if (isObj(value.PLpgSQL_expr)) {
      const expr = value.PLpgSQL_expr;
      const query = typeof expr.query === 'string' ? expr.query : '';
      const sql = plpgsqlExprToSql(query, num(expr.parseMode));
      if (sql === undefined || !analyseNested(sql, c)) c.tags.add('body-unparsed');
      return;
    }
    for (const [k, v] of Object.entries(value)) {
      if ((k === 'PLpgSQL_stmt_dynexecute' || k === 'PLpgSQL_stmt_dynfors') && isObj(v)) {
        c.tags.add('dynamic-sql');
        const query = isObj(v.query) && isObj(v.query.PLpgSQL_expr) ? v.query.PLpgSQL_expr.query : undefined;
        const literal = typeof query === 'string' ? literalOf(query) : undefined;
        if (literal !== undefined) analyseNested(literal, c); // EXECUTE 'constant text'
      }
      if (k === 'PLpgSQL_stmt_open' && isObj(v) && v.dynquery) c.tags.add('dynamic-sql');
      visit(v);
    }
  };
  c.depth++;
  try {
    visit(tree);
  } finally {
    c.depth--;
  }
}

/** PL/pgSQL keeps expressions as text plus the raw-parse mode PostgreSQL would use for them. */
function plpgsqlExprToSql(query: string, parseMode: number): string | undefined {
  if (parseMode === 0) return query; // RAW_PARSE_DEFAULT: a whole statement
  if (parseMode === 2) return `SELECT ${query}`; // RAW_PARSE_PLPGSQL_EXPR
  if (parseMode >= 3 && parseMode <= 5) {
    // RAW_PARSE_PLPGSQL_ASSIGNn: "target := expr"; keep the expression.
    try {
      const op = scanSync(query).tokens.find((t) => t.text === ':=' || t.text === '=');
      return op ? `SELECT ${Buffer.from(query, 'utf8').subarray(op.end).toString('utf8')}` : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** If `expr` is a single string constant (e.g. `'drop table x'`), its value. */
function literalOf(expr: string): string | undefined {
  try {
    const stmt = (parseSync(`SELECT ${expr}`) as unknown as { stmts?: Obj[] }).stmts?.[0]?.stmt;
    const [, select] = unwrap(stmt);
    const targets = Array.isArray(select.targetList) ? select.targetList : [];
    if (targets.length !== 1 || select.fromClause) return undefined;
    const target = targets[0];
    return isObj(target) && isObj(target.ResTarget) ? constString(target.ResTarget.val) : undefined;
  } catch {
    return undefined;
  }
}

/** Parses SQL found inside the statement (bodies, literals) and merges what it touches. */
function analyseNested(sql: string, c: Collector): boolean {
  if (c.depth >= MAX_NESTED_PARSE_DEPTH) {
    c.tags.add('dynamic-sql');
    return false;
  }
  let stmts: Obj[];
  try {
    stmts = (parseSync(sql) as unknown as { stmts?: Obj[] }).stmts ?? [];
  } catch {
    return false;
  }
  c.depth++;
  try {
    for (const entry of stmts) {
      const [kind, body] = unwrap(entry.stmt);
      visitNode(kind, body, c, new Set(), '', false, '');
    }
  } finally {
    c.depth--;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------

function readOnlyOf(kind: string, body: Obj, tags: ReadonlySet<string>): boolean {
  // Session changes and SQL run from strings are never "provably read-only", whatever the kind.
  for (const tag of UNSAFE_FOR_READ_ONLY) if (tags.has(tag)) return false;
  switch (kind) {
    case 'SelectStmt':
      return !tags.has('select-into') && !tags.has('writable-cte') && !tags.has('locking-read');
    case 'ExplainStmt': {
      if (!tags.has('explain-analyze')) return true; // plans only, executes nothing
      const [innerKind, inner] = unwrap(body.query);
      return readOnlyOf(innerKind, inner, tags);
    }
    case 'DeclareCursorStmt': {
      const [innerKind, inner] = unwrap(body.query);
      return readOnlyOf(innerKind, inner, tags);
    }
    case 'VariableShowStmt':
    case 'FetchStmt':
    case 'ClosePortalStmt':
      return true;
    case 'TransactionStmt':
      return [
        'TRANS_STMT_BEGIN',
        'TRANS_STMT_START',
        'TRANS_STMT_COMMIT',
        'TRANS_STMT_ROLLBACK',
        'TRANS_STMT_SAVEPOINT',
        'TRANS_STMT_RELEASE',
        'TRANS_STMT_ROLLBACK_TO',
      ].includes(String(body.kind));
    default:
      return false;
  }
}

/**
 * A WHERE clause that references no column (and is not WHERE CURRENT OF) selects all rows or none
 * (`WHERE true`, `WHERE 1 = 1`, `WHERE now() > '2000-01-01'`), so it counts as no WHERE at all.
 */
function meaningfulWhere(where: unknown): boolean {
  if (where === undefined || where === null) return false;
  let found = false;
  const visit = (v: unknown): void => {
    if (found) return;
    if (Array.isArray(v)) {
      for (const item of v) visit(item);
    } else if (isObj(v)) {
      for (const [k, inner] of Object.entries(v)) {
        if (k === 'ColumnRef' || k === 'CurrentOfExpr') {
          found = true;
          return;
        }
        visit(inner);
      }
    }
  };
  visit(where);
  return found;
}

interface DefElem {
  defname?: string;
  arg?: unknown;
}

/** The text of a DefElem argument given as a String node (`LANGUAGE plpgsql`, `AS $$…$$` in DO). */
function defString(d: DefElem | undefined): string | undefined {
  return d ? constStringNode(d.arg) : undefined;
}

function defElems(list: unknown): DefElem[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((n) => (isObj(n) && isObj(n.DefElem) ? [n.DefElem as DefElem] : []));
}

/** Boolean value of a DefElem option (`ANALYZE`, `ANALYZE false`, `READ WRITE` = transaction_read_only 0). */
function defBool(d: DefElem, whenMissing: boolean): boolean {
  const arg = d.arg;
  if (!isObj(arg)) return whenMissing;
  if (isObj(arg.String)) return parseBool(String(arg.String.sval ?? ''), whenMissing);
  if (isObj(arg.Boolean)) return arg.Boolean.boolval === true;
  if (isObj(arg.Integer)) return num(arg.Integer.ival) !== 0;
  if (isObj(arg.A_Const)) {
    const k = arg.A_Const;
    if (isObj(k.boolval)) return k.boolval.boolval === true;
    if (isObj(k.ival)) return num(k.ival.ival) !== 0;
    if (isObj(k.sval)) return parseBool(String(k.sval.sval ?? ''), whenMissing);
  }
  return whenMissing;
}

function parseBool(value: string, fallback: boolean): boolean {
  const v = value.trim().toLowerCase();
  if (['on', 'true', 'yes', '1', 't', 'y'].includes(v)) return true;
  if (['off', 'false', 'no', '0', 'f', 'n'].includes(v)) return false;
  return fallback;
}

/** The value of a string constant node (`A_Const` with sval), else undefined. */
function constString(node: unknown): string | undefined {
  if (!isObj(node)) return undefined;
  const k = node.A_Const;
  if (isObj(k) && isObj(k.sval) && typeof k.sval.sval === 'string') return k.sval.sval;
  if (isObj(k) && isObj(k.sval)) return ''; // '' is stored as an empty sval object
  return undefined;
}

function constStringNode(node: unknown): string | undefined {
  return isObj(node) && isObj(node.String) ? String(node.String.sval ?? '') : undefined;
}

function unwrap(node: unknown): [string, Obj] {
  if (isObj(node)) {
    const [entry] = Object.entries(node);
    if (entry && isObj(entry[1])) return [entry[0], entry[1]];
  }
  return ['Unknown', {}];
}

function parserError(err: unknown): { message: string; position?: number } {
  const details = isObj(err) && isObj(err.sqlDetails) ? err.sqlDetails : undefined;
  const message = errorMessage(err);
  const cursor = details?.cursorPosition;
  // libpg-query reports a 0-based character offset; PostgreSQL's own error position is 1-based.
  return typeof cursor === 'number' && cursor >= 0 ? { message, position: cursor + 1 } : { message };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
