// Shell command-line analysis for the SSH guard (docs/guardrails-shell.md).
//
// Pure: no network, no session. The SSH protocol layer reconstructs the line a user submits (exec
// command, or keystrokes through line-editor.ts / screen-line.ts), calls `analyzeCommandLine`, and
// `evaluateCommandLine` (rules.ts) turns the analysis into allow / review / block.
//
// Two parsers, on purpose:
//
// 1. sh-syntax (mvdan/sh compiled to WebAssembly, bash dialect) is the authority on the GRAMMAR. A
//    line it rejects is not analysed further: the verdict is block, with its message and position
//    (and `incomplete` when more input would complete it: an open quote, `if` without `fi`, a
//    here-document without its delimiter). sh-syntax 0.7 serialises only statement-level facts,
//    though: every command node and word part comes back as `{Pos, End}` and nothing else, so its
//    tree cannot be walked for command names.
// 2. The structure is therefore read by the recursive-descent bash parser below (quoting, escapes,
//    ANSI-C `$'…'`, expansions, substitutions, compound commands, functions, here-documents), and
//    CROSS-CHECKED against sh-syntax on every string parsed: the number of top-level statements,
//    where each starts, which ones run in the background, and the redirections of simple ones must
//    be identical, or the line is refused ("the guard's parser and the shell grammar disagree").
//    A mistake in this parser thus fails closed instead of hiding a command.
//
// The walk collects EVERY simple command: in pipelines, lists, subshells, groups, `$(…)`, backticks,
// `<(…)`, `${x:-$(…)}`, `$((…))`, compound commands, function bodies (walked where defined), and
// inside strings that will be run as shell code: `eval`, `sh/bash/zsh/dash/… -c`, here-documents
// fed to a shell, `alias` values, `trap` actions, `watch`, `su -c`, `flock -c`, `env -S`. Wrapper
// commands (`sudo`, `env`, `xargs`, `nohup`, `timeout`, `exec`, `command`, `builtin`, `nice`,
// `busybox`, `find -exec`, …) are unwrapped so the command they run is evaluated too.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
// The package entry installs Go's `wasm_exec` runtime (globalThis.Go) and the fs/crypto shims.
import { LangVariant } from 'sh-syntax';

// ---------------------------------------------------------------------------------------------
// Public types

/** Name given to a command whose name is not a literal word (`$X`, `$(echo rm)`, `/bin/r?`). */
export const DYNAMIC_COMMAND = '<dynamic>';
/** Name given to a statement with redirections but no command word (`> /etc/motd`). */
export const NO_COMMAND = '<none>';

export type ArgKind = 'literal' | 'dynamic' | 'glob';

export type ContextKind =
  | 'sequence' // one of several statements separated by `;`, `&` or newlines
  | 'and-or' // one of several pipelines joined by `&&` / `||` (`operator` is the one before it)
  | 'pipeline' // one of several commands joined by `|` / `|&`
  | 'background' // statement ended by `&` (also `coproc`)
  | 'negated' // `! cmd`
  | 'subshell' // `( … )`
  | 'group' // `{ …; }`
  | 'command-substitution' // `$(…)`, backticks, also inside `${…}` and `$((…))`
  | 'process-substitution' // `<(…)`, `>(…)`
  | 'compound' // if / while / until / for / select / case / [[ ]] / (( )) (`name` is the keyword)
  | 'function' // a function body (`name` is the function)
  | 'coproc'
  | 'eval' // the string given to `eval`
  | 'shell-c' // the string given to `sh -c` / `bash -c` / `su -c` / `sudo -s` / `flock -c` …
  | 'here-doc' // a here-document or here-string read as a script by a shell
  | 'alias' // an alias value
  | 'trap' // a trap action
  | 'wrapper'; // the command run by a wrapper (`name`: sudo, env, xargs, find, watch, …)

export interface ContextFrame {
  kind: ContextKind;
  /** Keyword, function name, wrapper or shell name. */
  name?: string;
  /** 0-based position in the sequence, and-or list or pipeline. */
  index?: number;
  /** Number of commands in the pipeline. */
  length?: number;
  /** and-or: `&&` or `||` before this pipeline (absent for the first one). */
  operator?: '&&' | '||';
}

export interface RedirectInfo {
  /** `>`, `>>`, `<`, `<>`, `>&`, `<&`, `>|`, `&>`, `&>>`, `<<`, `<<-`, `<<<`. */
  op: string;
  /** File descriptor (`2`) or `{var}` before the operator. */
  fd?: string;
  /** The target after quote removal (here-documents: the delimiter); dynamic parts as written. */
  target: string;
}

export interface SimpleCommand {
  /**
   * The command name after quote removal and escape processing, as a basename: `cu""rl` → `curl`,
   * `\rm` → `rm`, `/usr/bin/curl` → `curl`. `<dynamic>` when it is not a literal word.
   */
  name: string;
  /** The name as written after quote removal when it contains a `/` (`/usr/bin/curl`). */
  path?: string;
  /** For a globbed name (`/bin/r?`): the glob of the basename (`r?`). Rules test it against their names. */
  namePattern?: string;
  /** Arguments after quote removal; dynamic parts (`$X`, `$(…)`) are kept as written. */
  args: string[];
  /** Parallel to `args`. */
  argKinds: ArgKind[];
  redirects: RedirectInfo[];
  /** Where the command sits, outermost first. Empty: a plain command of the submitted line. */
  context: ContextFrame[];
  /** True when it runs in the line's own command list (no pipeline, subshell, substitution, …). */
  top: boolean;
  /** Facts about this command (see docs); includes those inherited from its context. */
  constructs: string[];
  /** Source text (for unwrapped commands: the argument words joined by spaces). */
  text: string;
}

export type ShellAnalysis =
  | { ok: true; commands: SimpleCommand[]; constructs: string[] }
  | {
      ok: false;
      error: {
        message: string;
        /** 1-based character offset in the line, when known. */
        position?: number;
        /** The grammar says more input would complete the line (open quote, `if` without `fi`, …). */
        incomplete?: boolean;
      };
    };

/** Lines longer than this (UTF-8 bytes) are refused. */
export const MAX_LINE_BYTES = 64 * 1024;
/** Strings run as shell code (eval, sh -c, …) are parsed to this depth; deeper fails closed. */
export const MAX_NESTED_DEPTH = 4;
const MAX_BRACE_FIELDS = 256;
const MAX_PARSE_DEPTH = 200;

// ---------------------------------------------------------------------------------------------
// sh-syntax, driven synchronously.
//
// sh-syntax's own `parse()` is async and instantiates a fresh Go runtime per call (~9 ms). Here the
// module is compiled once and an instance is reused until it has processed SH_BUDGET bytes (its
// allocator does not give memory back: a reused instance crashes after ~1 MB of parse output), then
// replaced. Any trap or garbled result discards the instance and the line is retried once.

// The WebAssembly global, typed here: the gateway's TypeScript lib (ES2023, no DOM) does not declare it.
type WasmModule = object;
interface WasmInstance {
  exports: object;
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: object) => WasmInstance;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface GoRuntime {
  importObject: object;
  run(instance: WasmInstance): Promise<void>;
}
type GoConstructor = new () => GoRuntime;
interface ShExports {
  memory: { buffer: ArrayBuffer };
  wasmAlloc(size: number): number;
  wasmFree(pointer: number): void;
  process(...args: (number | boolean)[]): number;
}
interface ShPos {
  Offset: number;
  Line: number;
  Col: number;
}
interface ShNode {
  Pos: ShPos;
  End: ShPos;
}
interface ShRedirect extends ShNode {
  Op: string;
  N: { Value: string } | null;
  Word: ShNode;
}
interface ShStmt extends ShNode {
  Cmd: ShNode | null;
  Negated: boolean;
  Background: boolean;
  Redirs: ShRedirect[];
}
type ShResult =
  | { ok: true; stmts: ShStmt[] }
  | { ok: false; message: string; offset?: number; incomplete: boolean };

const SH_BUDGET = 256 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

class ShSyntax {
  private instance: ShExports | undefined;
  private used = 0;

  constructor(private readonly module: WasmModule) {}

  parse(text: string): ShResult {
    try {
      return this.attempt(text);
    } catch {
      this.instance = undefined;
      return this.attempt(text); // a fresh instance; a second failure propagates
    }
  }

  private attempt(text: string): ShResult {
    if (!this.instance || this.used > SH_BUDGET) {
      this.instance = undefined;
      const Go = (globalThis as unknown as { Go?: GoConstructor }).Go;
      if (!Go) throw new Error('sh-syntax: Go WebAssembly runtime not loaded');
      const go = new Go();
      const instance = new wasm.Instance(this.module, go.importObject);
      void go.run(instance); // starts the Go runtime synchronously; exports are usable right after
      this.instance = instance.exports as unknown as ShExports;
      this.used = 0;
    }
    const { memory, wasmAlloc, wasmFree, process } = this.instance;
    const bytes = encoder.encode(text);
    const empty = wasmAlloc(0);
    const pointer = wasmAlloc(bytes.byteLength);
    new Uint8Array(memory.buffer).set(bytes, pointer);
    const stopAt = wasmAlloc(0);
    // processor(filePath, text, print, keepComments, variant, stopAt, recoverErrors, …printer options)
    const result = process(
      ...[empty, 0, 0, pointer, bytes.byteLength, bytes.byteLength, false, false, LangVariant.LangBash],
      ...[stopAt, 0, 0, 0, false, 2, true, true, true, false, false, false, false],
    );
    wasmFree(empty);
    wasmFree(pointer);
    wasmFree(stopAt);
    const out = new Uint8Array(memory.buffer).subarray(result);
    const end = out.indexOf(0);
    const json = decoder.decode(out.subarray(0, end < 0 ? out.length : end));
    this.used += bytes.byteLength + json.length;
    if (!json.startsWith('{"') || !json.endsWith('}')) throw new Error(`sh-syntax: ${json.slice(0, 200)}`);
    const parsed = JSON.parse(json) as {
      file?: { Stmts?: ShStmt[] };
      parseError?: { Text: string; Pos?: ShPos; Incomplete?: boolean } | null;
      message?: string;
    };
    if (parsed.parseError) {
      const { Text, Pos, Incomplete } = parsed.parseError;
      return { ok: false, message: Text, offset: Pos?.Offset, incomplete: Incomplete === true };
    }
    if (parsed.message) return { ok: false, message: parsed.message, incomplete: false };
    return { ok: true, stmts: parsed.file?.Stmts ?? [] };
  }
}

let ready: Promise<void> | undefined;
let sh: ShSyntax | undefined;

/** Loads the shell grammar (WASM). Idempotent; must be awaited once before `analyzeCommandLine`. */
export function initShellParser(): Promise<void> {
  ready ??= (async () => {
    const path = createRequire(import.meta.url).resolve('sh-syntax/main.wasm');
    const module = await wasm.compile(await readFile(path));
    const parser = new ShSyntax(module);
    parser.parse('true'); // instantiate now, so the first line pays nothing extra
    sh = parser;
  })().catch((err: unknown) => {
    ready = undefined;
    throw err;
  });
  return ready;
}

// ---------------------------------------------------------------------------------------------
// Syntax tree of the structural parser

type Part =
  /** Literal text. `q`: quoted or escaped (no brace expansion, globbing or word splitting). */
  | { t: 'lit'; v: string; q: boolean }
  /** `$x`, `${x}`, `${x:-…}`, `$1`, `$@`. `name` only for the plain forms `$x` / `${x}`. */
  | { t: 'param'; name?: string; src: string; q: boolean; nested: List[] }
  | { t: 'cmdsub'; body: List; src: string; q: boolean }
  | { t: 'procsub'; body: List; src: string }
  /** `$((…))`, `$[…]`, `((…))`, `for ((…))`: only the substitutions inside matter. */
  | { t: 'arith'; src: string; q: boolean; nested: List[] };

interface Word {
  parts: Part[];
  src: string;
}

interface Assign {
  name: string;
  value?: Word;
  array?: Word[];
}

interface Redir {
  fd?: string;
  op: string;
  target: Word;
  /** UTF-16 offsets of the target word in the parser's source (for the cross-check). */
  targetStart: number;
  targetEnd: number;
  heredoc?: Heredoc;
}

interface Heredoc {
  delim: string;
  quoted: boolean;
  strip: boolean;
  body: string;
  /** Expansions of an unquoted here-document body. */
  parts: Part[];
  done: boolean;
}

type Command =
  | { t: 'simple'; assigns: Assign[]; words: Word[]; redirs: Redir[]; src: string }
  | { t: 'subshell' | 'group'; body: List; redirs: Redir[]; src: string }
  | {
      t: 'compound';
      keyword: string;
      lists: List[];
      words: Word[];
      loopVar?: string;
      redirs: Redir[];
      src: string;
    }
  | { t: 'function'; name: string; body: Command; redirs: Redir[]; src: string }
  | { t: 'coproc'; body: Command; redirs: Redir[]; src: string };

interface Pipeline {
  negated: boolean;
  time: boolean;
  cmds: Command[];
}

interface AndOr {
  items: Pipeline[];
  ops: ('&&' | '||')[];
}

interface Statement {
  andOr: AndOr;
  background: boolean;
  start: number;
}

interface List {
  stmts: Statement[];
}

class SyntaxProblem extends Error {
  constructor(
    message: string,
    readonly pos: number,
  ) {
    super(message);
  }
}

const DECLARATION_BUILTINS = new Set(['declare', 'typeset', 'local', 'export', 'readonly', 'nameref']);
const META = new Set([' ', '\t', '\n', ';', '&', '|', '<', '>', '(', ')']);
const WORD_BREAK = new Set([...META, "'", '"', '\\', '$', '`']);
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const COMPOUND_START = new Set([
  '{',
  'if',
  'while',
  'until',
  'for',
  'select',
  'case',
  '[[',
  'function',
  'coproc',
]);
const REDIRECT_OPS = ['<<<', '<<-', '<<', '<>', '<&', '<', '&>>', '&>', '>>', '>&', '>|', '>'];

// ---------------------------------------------------------------------------------------------
// Structural parser (bash)

class Parser {
  private pos = 0;
  private pending: Heredoc[] = [];
  private depth = 0;
  /** Start offsets of the top-level statements and their simple redirections, for the cross-check. */
  readonly top: { start: number; background: boolean; redirs?: Redir[] }[] = [];

  constructor(private readonly src: string) {}

  parseProgram(): List {
    const list = this.parseList(() => false, true);
    this.skipLinebreaks();
    if (!this.eof()) this.fail(`unexpected ${JSON.stringify(this.ch())}`);
    if (this.pending.length > 0) this.fail(`unclosed here-document ${this.pending[0]?.delim ?? ''}`);
    return list;
  }

  // ---- characters -----------------------------------------------------------------------------

  private ch(offset = 0): string {
    return this.src.charAt(this.pos + offset);
  }

  private at(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }

  private eof(): boolean {
    return this.pos >= this.src.length;
  }

  private fail(message: string, pos = this.pos): never {
    throw new SyntaxProblem(message, pos);
  }

  private enter(): void {
    if (++this.depth > MAX_PARSE_DEPTH) this.fail('line is nested too deeply to analyse');
  }

  private leave(): void {
    this.depth--;
  }

  /** Blanks, line continuations and comments; never a newline. */
  private skipBlanks(): void {
    for (;;) {
      const c = this.ch();
      if (c === ' ' || c === '\t') this.pos++;
      else if (c === '\\' && this.ch(1) === '\n') this.pos += 2;
      else if (c === '#') {
        const nl = this.src.indexOf('\n', this.pos);
        this.pos = nl < 0 ? this.src.length : nl;
      } else return;
    }
  }

  private skipLinebreaks(): void {
    for (;;) {
      this.skipBlanks();
      if (this.ch() !== '\n') return;
      this.newline();
    }
  }

  /** Consumes a newline token and reads the bodies of the here-documents opened on its line. */
  private newline(): void {
    this.pos++;
    const pending = this.pending;
    this.pending = [];
    for (const h of pending) {
      const lines: string[] = [];
      while (!this.eof()) {
        const nl = this.src.indexOf('\n', this.pos);
        const lineEnd = nl < 0 ? this.src.length : nl;
        const line = this.src.slice(this.pos, lineEnd);
        this.pos = nl < 0 ? this.src.length : nl + 1;
        const text = h.strip ? line.replace(/^\t+/, '') : line;
        if (text === h.delim) {
          h.done = true;
          break;
        }
        lines.push(text);
      }
      if (!h.done) this.fail(`unclosed here-document ${h.delim}`);
      h.body = lines.map((l) => `${l}\n`).join('');
      if (!h.quoted) h.parts = new Parser(h.body).heredocParts();
    }
  }

  /** The next token if it is a plain unquoted word (for reserved words and function names). */
  private peekWord(): string | undefined {
    let i = this.pos;
    while (i < this.src.length && !WORD_BREAK.has(this.src.charAt(i))) i++;
    if (i === this.pos) return undefined;
    const next = this.src.charAt(i);
    if (next !== '' && !META.has(next)) return undefined;
    return this.src.slice(this.pos, i);
  }

  private isReserved(...words: string[]): boolean {
    const w = this.peekWord();
    return w !== undefined && words.includes(w);
  }

  private expectReserved(word: string): void {
    this.skipLinebreaks();
    if (!this.isReserved(word)) this.fail(`expected \`${word}\``);
    this.pos += word.length;
  }

  private expectChar(c: string): void {
    if (this.ch() !== c) this.fail(`expected \`${c}\``);
    this.pos++;
  }

  // ---- lists, and-or lists, pipelines ----------------------------------------------------------

  private parseList(terminated: () => boolean, topLevel = false): List {
    this.enter();
    const stmts: Statement[] = [];
    for (;;) {
      this.skipLinebreaks();
      if (this.eof() || terminated()) break;
      const start = this.pos;
      const andOr = this.parseAndOr();
      this.skipBlanks();
      let background = false;
      let separated = false;
      const c = this.ch();
      const c1 = this.ch(1);
      if (c === '&' && c1 !== '&' && c1 !== '>') {
        this.pos++;
        background = true;
        separated = true;
      } else if (c === ';' && c1 !== ';' && c1 !== '&') {
        this.pos++;
        separated = true;
      } else if (c === '\n') separated = true;
      stmts.push({ andOr, background, start });
      if (topLevel) this.top.push({ start, background, redirs: simpleRedirs(andOr) });
      if (!separated) {
        this.skipBlanks();
        if (!this.eof() && !terminated() && this.ch() !== '\n') {
          this.fail(`unexpected ${JSON.stringify(this.ch())}`);
        }
      }
    }
    this.leave();
    return { stmts };
  }

  private parseAndOr(): AndOr {
    const items = [this.parsePipeline()];
    const ops: ('&&' | '||')[] = [];
    for (;;) {
      this.skipBlanks();
      if (!this.at('&&') && !this.at('||')) break;
      ops.push(this.at('&&') ? '&&' : '||');
      this.pos += 2;
      this.skipLinebreaks();
      items.push(this.parsePipeline());
    }
    return { items, ops };
  }

  private parsePipeline(): Pipeline {
    let negated = false;
    let time = false;
    for (;;) {
      this.skipBlanks();
      const w = this.peekWord();
      if (w === '!') {
        this.pos++;
        negated = !negated;
      } else if (w === 'time' && !time) {
        this.pos += 4;
        time = true;
        this.skipBlanks();
        if (this.peekWord() === '-p') this.pos += 2;
      } else break;
    }
    const cmds: Command[] = [];
    const c = this.ch();
    if ((negated || time) && (this.eof() || c === ';' || c === '&' || c === '\n' || c === ')')) {
      return { negated, time, cmds };
    }
    cmds.push(this.parseCommand());
    for (;;) {
      this.skipBlanks();
      if (this.ch() !== '|' || this.ch(1) === '|') break;
      this.pos += this.ch(1) === '&' ? 2 : 1;
      this.skipLinebreaks();
      cmds.push(this.parseCommand());
    }
    return { negated, time, cmds };
  }

  // ---- commands -------------------------------------------------------------------------------

  private parseCommand(): Command {
    this.enter();
    try {
      this.skipBlanks();
      const start = this.pos;
      if (this.at('((')) {
        this.pos += 2;
        const arith = this.scanArith(start);
        return this.finishCompound(
          { t: 'compound', keyword: '((', lists: [], words: [arith], redirs: [], src: '' },
          start,
        );
      }
      if (this.ch() === '(') {
        this.pos++;
        const body = this.parseList(() => this.ch() === ')');
        this.skipLinebreaks();
        this.expectChar(')');
        return this.finishCompound({ t: 'subshell', body, redirs: [], src: '' }, start);
      }
      const w = this.peekWord();
      if (w !== undefined && COMPOUND_START.has(w)) return this.parseCompound(w, start);
      if (
        w !== undefined &&
        ['then', 'elif', 'else', 'fi', 'do', 'done', 'esac', '}', ']]', 'in'].includes(w)
      ) {
        this.fail(`unexpected \`${w}\``);
      }
      if (w !== undefined && this.isFunctionDefinition(w)) {
        this.pos += w.length;
        this.skipBlanks();
        this.expectChar('(');
        this.skipBlanks();
        this.expectChar(')');
        this.skipLinebreaks();
        const body = this.parseCommand();
        return { t: 'function', name: w, body, redirs: [], src: this.src.slice(start, this.pos) };
      }
      return this.parseSimple(start);
    } finally {
      this.leave();
    }
  }

  private isFunctionDefinition(name: string): boolean {
    let i = this.pos + name.length;
    while (this.src.charAt(i) === ' ' || this.src.charAt(i) === '\t') i++;
    if (this.src.charAt(i) !== '(') return false;
    i++;
    while (this.src.charAt(i) === ' ' || this.src.charAt(i) === '\t') i++;
    return this.src.charAt(i) === ')';
  }

  private finishCompound<C extends Command>(cmd: C, start: number): C {
    for (;;) {
      this.skipBlanks();
      const r = this.tryRedirect();
      if (!r) break;
      cmd.redirs.push(r);
    }
    cmd.src = this.src.slice(start, this.pos);
    return cmd;
  }

  private parseCompound(keyword: string, start: number): Command {
    this.pos += keyword.length;
    const lists: List[] = [];
    const words: Word[] = [];
    const reserved =
      (...ws: string[]) =>
      () =>
        this.isReserved(...ws);
    switch (keyword) {
      case '{': {
        const body = this.parseList(reserved('}'));
        this.expectReserved('}');
        return this.finishCompound({ t: 'group', body, redirs: [], src: '' }, start);
      }
      case 'if': {
        lists.push(this.parseList(reserved('then')));
        this.expectReserved('then');
        lists.push(this.parseList(reserved('elif', 'else', 'fi')));
        for (;;) {
          this.skipLinebreaks();
          if (this.isReserved('elif')) {
            this.pos += 4;
            lists.push(this.parseList(reserved('then')));
            this.expectReserved('then');
            lists.push(this.parseList(reserved('elif', 'else', 'fi')));
          } else if (this.isReserved('else')) {
            this.pos += 4;
            lists.push(this.parseList(reserved('fi')));
          } else break;
        }
        this.expectReserved('fi');
        break;
      }
      case 'while':
      case 'until': {
        lists.push(this.parseList(reserved('do')));
        this.expectReserved('do');
        lists.push(this.parseList(reserved('done')));
        this.expectReserved('done');
        break;
      }
      case 'for':
      case 'select': {
        this.skipBlanks();
        let loopVar: string | undefined;
        if (keyword === 'for' && this.at('((')) {
          const arithStart = this.pos;
          this.pos += 2;
          words.push(this.scanArith(arithStart));
          this.skipBlanks();
          if (this.ch() === ';') this.pos++;
        } else {
          loopVar = literalText(this.parseWord('normal'));
          this.skipLinebreaks();
          if (this.isReserved('in')) {
            this.pos += 2;
            for (;;) {
              this.skipBlanks();
              const c = this.ch();
              if (c === ';') {
                this.pos++;
                break;
              }
              if (c === '\n' || this.eof()) break;
              words.push(this.parseWord('normal'));
            }
          } else if (this.ch() === ';') this.pos++;
        }
        this.skipLinebreaks();
        if (this.isReserved('{')) {
          this.pos++;
          lists.push(this.parseList(reserved('}')));
          this.expectReserved('}');
        } else {
          this.expectReserved('do');
          lists.push(this.parseList(reserved('done')));
          this.expectReserved('done');
        }
        return this.finishCompound(
          { t: 'compound', keyword, lists, words, loopVar, redirs: [], src: '' },
          start,
        );
      }
      case 'case': {
        this.skipBlanks();
        words.push(this.parseWord('normal'));
        this.skipLinebreaks();
        this.expectReserved('in');
        for (;;) {
          this.skipLinebreaks();
          if (this.isReserved('esac')) break;
          if (this.ch() === '(') this.pos++;
          for (;;) {
            this.skipBlanks();
            words.push(this.parseWord('normal'));
            this.skipBlanks();
            if (this.ch() === '|') {
              this.pos++;
              continue;
            }
            this.expectChar(')');
            break;
          }
          lists.push(this.parseList(() => this.isReserved('esac') || this.at(';;') || this.at(';&')));
          this.skipLinebreaks();
          if (this.at(';;&')) this.pos += 3;
          else if (this.at(';;') || this.at(';&')) this.pos += 2;
        }
        this.expectReserved('esac');
        break;
      }
      case '[[': {
        for (;;) {
          this.skipLinebreaks();
          if (this.eof()) this.fail('expected `]]`');
          if (this.at(']]') && (this.ch(2) === '' || META.has(this.ch(2)))) {
            this.pos += 2;
            break;
          }
          if (this.at('&&') || this.at('||')) {
            this.pos += 2;
            continue;
          }
          const c = this.ch();
          if (c === '(' || c === ')' || c === '<' || c === '>') {
            this.pos++;
            continue;
          }
          const word = this.parseWord('normal');
          words.push(word);
          if (literalText(word) === '=~') {
            this.skipBlanks();
            words.push(this.parseWord('regex'));
          }
        }
        break;
      }
      case 'function': {
        this.skipBlanks();
        const name = literalText(this.parseWord('normal')) ?? DYNAMIC_COMMAND;
        this.skipBlanks();
        if (this.ch() === '(') {
          this.pos++;
          this.skipBlanks();
          this.expectChar(')');
        }
        this.skipLinebreaks();
        const body = this.parseCommand();
        return { t: 'function', name, body, redirs: [], src: this.src.slice(start, this.pos) };
      }
      case 'coproc': {
        this.skipBlanks();
        const w = this.peekWord();
        if (w !== undefined && NAME_RE.test(w) && !COMPOUND_START.has(w)) {
          // `coproc NAME compound-command`: NAME is a name only when a compound command follows.
          const save = this.pos;
          this.pos += w.length;
          this.skipBlanks();
          const next = this.peekWord();
          if (!(this.ch() === '(' || (next !== undefined && COMPOUND_START.has(next)))) this.pos = save;
        }
        const body = this.parseCommand();
        return { t: 'coproc', body, redirs: [], src: this.src.slice(start, this.pos) };
      }
    }
    return this.finishCompound({ t: 'compound', keyword, lists, words, redirs: [], src: '' }, start);
  }

  private parseSimple(start: number): Command {
    const assigns: Assign[] = [];
    const words: Word[] = [];
    const redirs: Redir[] = [];
    let end = this.pos;
    for (;;) {
      this.skipBlanks();
      const r = this.tryRedirect();
      if (r) {
        redirs.push(r);
        end = this.pos;
        continue;
      }
      const c = this.ch();
      if (this.eof() || c === '\n' || c === ';' || c === '&' || c === '|' || c === ')') break;
      if (c === '(') this.fail('unexpected `(`');
      if (words.length === 0) {
        const a = this.tryAssignment();
        if (a) {
          assigns.push(a);
          end = this.pos;
          continue;
        }
      } else if (DECLARATION_BUILTINS.has(literalText(words[0] ?? { parts: [], src: '' }) ?? '')) {
        // `declare -A m=([k]=v)`, `local a=(1 2)`: array assignments as arguments.
        const wordStart = this.pos;
        const a = this.tryAssignment();
        if (a?.array) {
          const parts: Part[] = [{ t: 'lit', v: `${a.name}=(`, q: true }];
          for (const w of a.array) {
            parts.push(...w.parts.map((p): Part => (p.t === 'lit' ? { ...p, q: true } : p)), {
              t: 'lit',
              v: ' ',
              q: true,
            });
          }
          parts.push({ t: 'lit', v: ')', q: true });
          words.push({ parts, src: this.src.slice(wordStart, this.pos) });
          end = this.pos;
          continue;
        }
        this.pos = wordStart;
      }
      words.push(this.parseWord('normal'));
      end = this.pos;
    }
    if (assigns.length === 0 && words.length === 0 && redirs.length === 0) {
      this.fail(this.eof() ? 'expected a command' : `unexpected ${JSON.stringify(this.ch())}`);
    }
    return { t: 'simple', assigns, words, redirs, src: this.src.slice(start, end) };
  }

  private tryAssignment(): Assign | undefined {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(\[[^\]\n]*\])?\+?=/.exec(this.src.slice(this.pos, this.pos + 256));
    if (!m) return undefined;
    const name = m[1] ?? '';
    this.pos += m[0].length;
    if (this.ch() === '(') {
      this.pos++;
      const array: Word[] = [];
      for (;;) {
        this.skipLinebreaks();
        if (this.ch() === ')') {
          this.pos++;
          break;
        }
        if (this.eof()) this.fail('expected `)`');
        array.push(this.parseWord('normal'));
      }
      return { name, array };
    }
    const c = this.ch();
    if (this.eof() || META.has(c)) return { name };
    return { name, value: this.parseWord('normal') };
  }

  private tryRedirect(): Redir | undefined {
    const save = this.pos;
    let fd: string | undefined;
    const m = /^(?:[0-9]+|\{[A-Za-z_][A-Za-z0-9_]*\})(?=[<>])/.exec(this.src.slice(this.pos, this.pos + 64));
    if (m) {
      fd = m[0];
      this.pos += fd.length;
    }
    const op = REDIRECT_OPS.find((o) => this.at(o) && !(fd !== undefined && o.startsWith('&')));
    // `<(` / `>(` start a process substitution (a word), not a redirection.
    if (!op || ((op === '<' || op === '>') && this.ch(1) === '(')) {
      this.pos = save;
      return undefined;
    }
    this.pos += op.length;
    this.skipBlanks();
    const targetStart = this.pos;
    const target = this.parseWord('normal');
    const redir: Redir = {
      op,
      target,
      targetStart,
      targetEnd: this.pos,
      ...(fd === undefined ? {} : { fd }),
    };
    if (op === '<<' || op === '<<-') {
      const quoted = target.parts.some((p) => p.t === 'lit' && p.q);
      const delim = target.parts.map((p) => (p.t === 'lit' ? p.v : p.src)).join('');
      const heredoc: Heredoc = { delim, quoted, strip: op === '<<-', body: '', parts: [], done: false };
      redir.heredoc = heredoc;
      this.pending.push(heredoc);
    }
    return redir;
  }

  // ---- words ----------------------------------------------------------------------------------

  private parseWord(mode: 'normal' | 'regex'): Word {
    const start = this.pos;
    const parts: Part[] = [];
    let parenDepth = 0;
    const lit = (v: string, q: boolean) => {
      const last = parts[parts.length - 1];
      if (last && last.t === 'lit' && last.q === q) last.v += v;
      else parts.push({ t: 'lit', v, q });
    };
    while (!this.eof()) {
      const c = this.ch();
      const c1 = this.ch(1);
      if (c === '\\') {
        if (c1 === '\n') this.pos += 2;
        else if (c1 === '') {
          lit('\\', true);
          this.pos++;
        } else {
          lit(c1, true);
          this.pos += 2;
        }
      } else if (c === "'") {
        const close = this.src.indexOf("'", this.pos + 1);
        if (close < 0) this.fail("reached end of line without closing quote `'`");
        lit(this.src.slice(this.pos + 1, close), true);
        this.pos = close + 1;
      } else if (c === '"') {
        for (const p of this.parseDquote()) {
          if (p.t === 'lit') lit(p.v, true);
          else parts.push(p);
        }
      } else if (c === '`') {
        parts.push(this.parseBacktick(false));
      } else if (c === '$' && c1 === '"') {
        this.pos++; // $"…" (locale translation) is a double-quoted string
      } else if (c === '$') {
        const p = this.parseDollar(false);
        if (p.t === 'lit') lit(p.v, p.q);
        else parts.push(p);
      } else if ((c === '<' || c === '>') && c1 === '(') {
        const s = this.pos;
        this.pos += 2;
        const body = this.parseList(() => this.ch() === ')');
        this.skipLinebreaks();
        this.expectChar(')');
        parts.push({ t: 'procsub', body, src: this.src.slice(s, this.pos) });
      } else if ('@!+*?'.includes(c) && c1 === '(') {
        lit(this.scanExtglob(), false);
      } else if (mode === 'regex' && (c === '(' || c === ')' || c === '|' || c === '<' || c === '>')) {
        if (c === '(') parenDepth++;
        if (c === ')') {
          if (parenDepth === 0) break;
          parenDepth--;
        }
        lit(c, false);
        this.pos++;
      } else if (META.has(c)) {
        break;
      } else {
        lit(c, false);
        this.pos++;
      }
    }
    if (this.pos === start)
      this.fail(this.eof() ? 'expected a word' : `unexpected ${JSON.stringify(this.ch())}`);
    if (parts.length === 0) parts.push({ t: 'lit', v: '', q: false }); // only line continuations
    return { parts, src: this.src.slice(start, this.pos) };
  }

  private scanExtglob(): string {
    const start = this.pos;
    this.pos += 2;
    let depth = 1;
    while (depth > 0) {
      if (this.eof()) this.fail('reached end of line without closing `)`', start);
      const c = this.ch();
      if (c === '\\') this.pos += 2;
      else if (c === "'") {
        const close = this.src.indexOf("'", this.pos + 1);
        if (close < 0) this.fail('reached end of line without closing quote');
        this.pos = close + 1;
      } else {
        if (c === '(') depth++;
        if (c === ')') depth--;
        this.pos++;
      }
    }
    return this.src.slice(start, this.pos);
  }

  /** `"…"`: the parts inside, literal ones marked quoted. `pos` is on the opening quote. */
  private parseDquote(): Part[] {
    const open = this.pos;
    this.pos++;
    const parts = this.quotedContent('"');
    if (this.ch() !== '"') this.fail('reached end of line without closing quote `"`', open);
    this.pos++;
    return parts;
  }

  /** Double-quote-like content up to `close` (or the end for here-document bodies). */
  private quotedContent(close: string | undefined): Part[] {
    const parts: Part[] = [];
    const lit = (v: string) => {
      const last = parts[parts.length - 1];
      if (last && last.t === 'lit') last.v += v;
      else parts.push({ t: 'lit', v, q: true });
    };
    while (!this.eof()) {
      const c = this.ch();
      if (close !== undefined && c === close) break;
      if (c === '\\') {
        const c1 = this.ch(1);
        if (c1 === '\n') this.pos += 2;
        else if (c1 === '$' || c1 === '`' || c1 === '\\' || (close !== undefined && c1 === close)) {
          lit(c1);
          this.pos += 2;
        } else {
          lit('\\');
          this.pos++;
        }
      } else if (c === '$') {
        const p = this.parseDollar(true);
        if (p.t === 'lit') lit(p.v);
        else parts.push(p);
      } else if (c === '`') {
        parts.push(this.parseBacktick(true));
      } else {
        lit(c);
        this.pos++;
      }
    }
    return parts;
  }

  heredocParts(): Part[] {
    return this.quotedContent(undefined).filter((p) => p.t !== 'lit');
  }

  private parseDollar(quoted: boolean): Part {
    const start = this.pos;
    const c1 = this.ch(1);
    if (c1 === "'" && !quoted) {
      this.pos += 2;
      return { t: 'lit', v: this.ansiC(start), q: true };
    }
    if (c1 === '(' && this.ch(2) === '(') {
      this.pos += 3;
      const arith = this.scanArith(start);
      const part = arith.parts[0];
      return part?.t === 'arith'
        ? { ...part, q: quoted }
        : { t: 'arith', src: arith.src, q: quoted, nested: [] };
    }
    if (c1 === '(') {
      this.pos += 2;
      const body = this.parseList(() => this.ch() === ')');
      this.skipLinebreaks();
      this.expectChar(')');
      return { t: 'cmdsub', body, src: this.src.slice(start, this.pos), q: quoted };
    }
    if (c1 === '[') {
      this.pos += 2;
      const nested = this.scanUntil(']', start);
      return { t: 'arith', src: this.src.slice(start, this.pos), q: quoted, nested };
    }
    if (c1 === '{') {
      this.pos += 2;
      const nested = this.scanUntil('}', start);
      const src = this.src.slice(start, this.pos);
      const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])\}$/.exec(src);
      return { t: 'param', src, q: quoted, nested, ...(m?.[1] ? { name: m[1] } : {}) };
    }
    const name = /^(?:[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])/.exec(
      this.src.slice(this.pos + 1, this.pos + 257),
    );
    if (name) {
      this.pos += 1 + name[0].length;
      return { t: 'param', name: name[0], src: this.src.slice(start, this.pos), q: quoted, nested: [] };
    }
    this.pos++;
    return { t: 'lit', v: '$', q: quoted };
  }

  /** Decodes `$'…'` (pos just after the opening quote) the way bash does. */
  private ansiC(start: number): string {
    let out = '';
    for (;;) {
      if (this.eof()) this.fail("reached end of line without closing quote `'`", start);
      const c = this.ch();
      this.pos++;
      if (c === "'") return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.ch();
      this.pos++;
      const simple: Record<string, string> = {
        a: '\x07',
        b: '\b',
        e: '\x1b',
        E: '\x1b',
        f: '\f',
        n: '\n',
        r: '\r',
        t: '\t',
        v: '\v',
        '\\': '\\',
        "'": "'",
        '"': '"',
        '?': '?',
      };
      const mapped = simple[e];
      if (mapped !== undefined) {
        out += mapped;
        continue;
      }
      const take = (re: RegExp, max: number): string => {
        let s = '';
        while (s.length < max && re.test(this.ch())) {
          s += this.ch();
          this.pos++;
        }
        return s;
      };
      if (e >= '0' && e <= '7') {
        const digits = e + take(/[0-7]/, 2);
        out += String.fromCharCode(Number.parseInt(digits, 8) & 0xff);
      } else if (e === 'x') {
        const hex = take(/[0-9a-fA-F]/, 2);
        out += hex ? String.fromCharCode(Number.parseInt(hex, 16)) : '\\x';
      } else if (e === 'u' || e === 'U') {
        const hex = take(/[0-9a-fA-F]/, e === 'u' ? 4 : 8);
        const cp = hex ? Number.parseInt(hex, 16) : Number.NaN;
        out += Number.isFinite(cp) && cp <= 0x10ffff ? String.fromCodePoint(cp) : `\\${e}${hex}`;
      } else if (e === 'c') {
        const ctl = this.ch();
        this.pos++;
        out += String.fromCharCode(ctl.toUpperCase().charCodeAt(0) & 0x1f);
      } else {
        out += `\\${e}`;
      }
    }
  }

  /** Backticks: unescape `\``, `\\`, `\$` (and `\"` inside double quotes), then parse the body. */
  private parseBacktick(quoted: boolean): Part {
    const start = this.pos;
    this.pos++;
    let body = '';
    for (;;) {
      if (this.eof()) this.fail('reached end of line without closing backquote', start);
      const c = this.ch();
      if (c === '`') {
        this.pos++;
        break;
      }
      const c1 = this.ch(1);
      if (c === '\\' && (c1 === '`' || c1 === '$' || c1 === '\\' || (quoted && c1 === '"'))) {
        body += c1;
        this.pos += 2;
      } else {
        body += c;
        this.pos++;
      }
    }
    let list: List;
    try {
      list = new Parser(body).parseProgram();
    } catch (err) {
      if (err instanceof SyntaxProblem) this.fail(`in backquotes: ${err.message}`, start);
      throw err;
    }
    return { t: 'cmdsub', body: list, src: this.src.slice(start, this.pos), q: quoted };
  }

  /** `((…))` and `for ((…))` (pos after the opening parens): an arithmetic word. */
  private scanArith(start: number): Word {
    const nested: List[] = [];
    let depth = 0;
    for (;;) {
      if (this.eof()) this.fail('reached end of line without closing `))`', start);
      const c = this.ch();
      if (c === ')' && depth === 0) {
        if (this.ch(1) !== ')') this.fail('expected `))`');
        this.pos += 2;
        break;
      }
      if (c === '(') depth++;
      if (c === ')') depth--;
      this.scanInner(nested);
    }
    const src = this.src.slice(start, this.pos);
    return { parts: [{ t: 'arith', src, q: false, nested }], src };
  }

  /** `${…}` / `$[…]` bodies (pos after the opening bracket) up to the matching `close`. */
  private scanUntil(close: string, start: number): List[] {
    const nested: List[] = [];
    for (;;) {
      if (this.eof()) this.fail(`reached end of line without matching \`${close}\``, start);
      if (this.ch() === close) {
        this.pos++;
        return nested;
      }
      this.scanInner(nested);
    }
  }

  /** One step inside ${…} / $((…)): quotes, escapes and substitutions are parsed, the rest skipped. */
  private scanInner(nested: List[]): void {
    const c = this.ch();
    if (c === '\\') this.pos += 2;
    else if (c === "'") {
      const close = this.src.indexOf("'", this.pos + 1);
      if (close < 0) this.fail("reached end of line without closing quote `'`");
      this.pos = close + 1;
    } else if (c === '"') nested.push(...nestedLists(this.parseDquote()));
    else if (c === '`') nested.push(...nestedLists([this.parseBacktick(false)]));
    else if (c === '$' && this.ch(1) === '"') this.pos++;
    else if (c === '$') nested.push(...nestedLists([this.parseDollar(false)]));
    else if ((c === '<' || c === '>') && this.ch(1) === '(') {
      this.pos += 2;
      nested.push(this.parseList(() => this.ch() === ')'));
      this.skipLinebreaks();
      this.expectChar(')');
    } else this.pos++;
  }
}

function nestedLists(parts: Part[]): List[] {
  const out: List[] = [];
  for (const p of parts) {
    if (p.t === 'cmdsub' || p.t === 'procsub') out.push(p.body);
    else if (p.t === 'param' || p.t === 'arith') out.push(...p.nested);
  }
  return out;
}

/** The redirections sh-syntax reports on a top-level statement: those of a lone simple/compound command. */
function simpleRedirs(andOr: AndOr): Redir[] | undefined {
  const only = andOr.items.length === 1 ? andOr.items[0] : undefined;
  if (!only || only.time || only.cmds.length !== 1) return undefined;
  const cmd = only.cmds[0];
  if (!cmd || cmd.t === 'function' || cmd.t === 'coproc') return undefined;
  return cmd.redirs;
}

/** The text of a word made only of literal parts, else undefined. */
function literalText(word: Word): string | undefined {
  let s = '';
  for (const p of word.parts) {
    if (p.t !== 'lit') return undefined;
    s += p.v;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Word expansion (static): brace expansion, quote removal, known variables

interface Field {
  text: string;
  kind: ArgKind;
  /** Contains a process substitution (`<(…)`): a file name chosen at run time. */
  procsub: boolean;
  /** Resolved from a variable assigned earlier on the line. */
  fromVar: boolean;
}

/** One character of a word for brace expansion: literal (quoted or not) or an opaque dynamic piece. */
type Unit =
  | { c: string; q: boolean; dyn?: undefined }
  | { c: string; q: true; dyn: 'dyn' | 'procsub' | 'var' };

// ---------------------------------------------------------------------------------------------
// The walk

interface Ctx {
  frames: ContextFrame[];
  constructs: string[];
  /** Where stdin comes from when it is not the terminal. */
  stdin?: 'pipe' | 'procsub' | 'file' | 'fd' | 'here-doc' | 'here-string';
  /** The script text a shell would read from stdin (literal here-document / here-string). */
  stdinScript?: string;
  stdoutPiped: boolean;
  /** Runs unconditionally, in order, in the line's own shell (for known-variable tracking). */
  sequential: boolean;
  functions: string[];
  depth: number;
}

class AnalysisProblem extends Error {}

/** Redirection targets that are not files ('redirect-to-file' is not reported for them). */
const NOT_A_FILE = /^\/dev\/(?:null|stdout|stderr|tty|fd\/[0-9]+)$/;
const SHELLS = new Set([
  'sh',
  'bash',
  'rbash',
  'dash',
  'zsh',
  'ksh',
  'ksh93',
  'mksh',
  'pdksh',
  'ash',
  'yash',
  'posh',
  'fish',
  'csh',
  'tcsh',
]);
const INTERPRETER_CODE_FLAGS: [RegExp, string[]][] = [
  [/^python[0-9.]*$/, ['-c']],
  [/^(?:perl|perl5)$/, ['-e', '-E']],
  [/^ruby$/, ['-e']],
  [/^(?:node|nodejs|bun|deno)$/, ['-e', '--eval', '-p', '--print']],
  [/^php[0-9.]*$/, ['-r']],
  [/^lua[0-9.]*$/, ['-e']],
];

/** Option letters (short) and names (long) that take a value, per wrapper. */
interface OptSpec {
  arg: string[];
  /** Options after which the wrapper does not run a command. */
  noExec?: string[];
  /** `-c`-like options whose value is shell code. */
  shellCode?: string[];
  /** The first operand is not the command (timeout's duration, chroot's root, flock's file, taskset's mask). */
  skipOperands?: number;
  /** Options may follow operands (GNU getopt permutation: `su - root -c cmd`). */
  permute?: boolean;
  /** Operands are not a command (su's user, script's log file). */
  noCommandOperands?: boolean;
}

const WRAPPERS: Record<string, OptSpec> = {
  sudo: {
    arg: ['u', 'g', 'C', 'D', 'h', 'p', 'r', 't', 'T', 'U', 'R'].concat(
      ['user', 'group', 'close-from', 'chdir', 'host', 'prompt', 'role', 'type', 'command-timeout'],
      ['other-user', 'chroot'],
    ),
    noExec: ['e', 'l', 'v', 'V', 'K', 'edit', 'list', 'validate', 'version', 'remove-timestamp', 'help'],
  },
  doas: { arg: ['u', 'C'], noExec: ['L'] },
  pkexec: { arg: ['user'], noExec: ['version', 'help'] },
  su: {
    arg: ['s', 'g', 'G', 'w', 'shell', 'group', 'supp-group', 'whitelist-environment'],
    shellCode: ['c', 'command', 'session-command'],
    permute: true,
    noCommandOperands: true,
  },
  runuser: {
    arg: ['s', 'g', 'G', 'u', 'w', 'shell', 'group', 'supp-group', 'user', 'whitelist-environment'],
    shellCode: ['c', 'command', 'session-command'],
    permute: true,
    noCommandOperands: true,
  },
  env: {
    arg: ['u', 'C', 'S', 'unset', 'chdir', 'split-string', 'block-signal', 'default-signal', 'ignore-signal'],
  },
  xargs: {
    arg: [
      'a',
      'd',
      'E',
      'I',
      'L',
      'n',
      'P',
      's',
      'arg-file',
      'delimiter',
      'max-args',
      'max-procs',
      'max-chars',
      'process-slot-var',
    ],
    noExec: ['help', 'version', 'show-limits'],
  },
  nohup: { arg: [] },
  timeout: { arg: ['s', 'k', 'signal', 'kill-after'], skipOperands: 1 },
  exec: { arg: ['a'] },
  command: { arg: [], noExec: ['v', 'V'] },
  builtin: { arg: [] },
  nice: { arg: ['n', 'adjustment'] }, // `nice -10 cmd`: -10 is an option cluster
  ionice: { arg: ['c', 'n', 'class', 'classdata'], noExec: ['p', 'P', 'u', 'pid', 'pgid', 'uid'] },
  taskset: { arg: [], noExec: ['p', 'pid'], skipOperands: 1 },
  stdbuf: { arg: ['i', 'o', 'e', 'input', 'output', 'error'] },
  setsid: { arg: [] },
  chroot: { arg: ['userspec', 'groups'], skipOperands: 1 },
  flock: { arg: ['w', 'E', 'timeout', 'conflict-exit-code'], shellCode: ['c', 'command'] },
  watch: { arg: ['n', 'interval'] },
  time: { arg: ['f', 'o', 'format', 'output'] },
  busybox: { arg: [] },
  script: {
    arg: [
      'E',
      'I',
      'O',
      'B',
      'T',
      'm',
      'echo',
      'log-in',
      'log-out',
      'log-io',
      'log-timing',
      'logging-format',
    ],
    shellCode: ['c', 'command'],
    noCommandOperands: true,
  },
  ssh: {
    arg: [
      'B',
      'b',
      'c',
      'D',
      'E',
      'e',
      'F',
      'I',
      'i',
      'J',
      'L',
      'l',
      'm',
      'O',
      'o',
      'p',
      'Q',
      'R',
      'S',
      'W',
      'w',
    ],
    skipOperands: 1,
  },
  strace: { arg: ['e', 'o', 'p', 's', 'u', 'a', 'b', 'E', 'I', 'O', 'P', 'S', 'X', 'U'] },
  nsenter: { arg: ['t', 'S', 'G', 'w', 'target', 'setuid', 'setgid', 'wd'] },
  unshare: { arg: ['R', 'w', 'S', 'G', 'root', 'wd', 'setuid', 'setgid'] },
  unbuffer: { arg: [] },
};
/** Wrappers whose command words are joined and run by a shell (`watch ls -l` = `sh -c 'ls -l'`). */
const JOINING_WRAPPERS = new Set(['watch']);

class Walker {
  readonly commands: SimpleCommand[] = [];
  /** Values of variables assigned on this line since the last command ran (any command may be a function). */
  private vars = new Map<string, string>();
  private ifsChanged = false;

  constructor(private readonly sh: ShSyntax) {}

  // ---- structure ------------------------------------------------------------------------------

  list(list: List, ctx: Ctx): void {
    list.stmts.forEach((stmt, i) => {
      let c = ctx;
      if (list.stmts.length > 1) c = frame(c, { kind: 'sequence', index: i });
      if (stmt.background) {
        c = { ...frame(c, { kind: 'background' }, 'background'), sequential: false };
      }
      this.andOr(stmt.andOr, c);
    });
  }

  private andOr(ao: AndOr, ctx: Ctx): void {
    ao.items.forEach((p, i) => {
      let c = ctx;
      if (ao.items.length > 1) {
        const op = i > 0 ? ao.ops[i - 1] : undefined;
        c = frame(c, { kind: 'and-or', index: i, ...(op ? { operator: op } : {}) });
        if (i > 0) c = { ...c, sequential: false };
      }
      this.pipeline(p, c);
    });
  }

  private pipeline(p: Pipeline, ctx: Ctx): void {
    const c = p.negated ? frame(ctx, { kind: 'negated' }) : ctx;
    const n = p.cmds.length;
    p.cmds.forEach((cmd, i) => {
      let ci = c;
      if (n > 1) {
        ci = {
          ...frame(c, { kind: 'pipeline', index: i, length: n }),
          sequential: false,
          stdin: i > 0 ? 'pipe' : c.stdin,
          stdoutPiped: i < n - 1 ? true : c.stdoutPiped,
        };
        if (i > 0) delete ci.stdinScript;
      }
      this.command(cmd, ci);
    });
  }

  private command(cmd: Command, ctx: Ctx): void {
    if (cmd.t === 'simple') {
      this.simple(cmd, ctx);
      return;
    }
    const c = { ...this.redirects(cmd.redirs, ctx), sequential: false };
    switch (cmd.t) {
      case 'subshell':
      case 'group':
        this.list(cmd.body, frame(c, { kind: cmd.t }));
        return;
      case 'compound': {
        const inner = frame(c, { kind: 'compound', name: cmd.keyword });
        if (cmd.loopVar) this.vars.delete(cmd.loopVar);
        for (const w of cmd.words) this.substitutions(w.parts, inner);
        for (const l of cmd.lists) this.list(l, inner);
        this.vars.clear();
        return;
      }
      case 'function': {
        const inner = {
          ...frame(c, { kind: 'function', name: cmd.name }),
          functions: [...c.functions, cmd.name],
        };
        this.command(cmd.body, inner);
        return;
      }
      case 'coproc':
        this.command(cmd.body, frame(c, { kind: 'coproc' }, 'background'));
        return;
    }
  }

  /** Walks redirection targets and returns the context for the command they apply to. */
  private redirects(redirs: Redir[], ctx: Ctx, own?: string[]): Ctx {
    let c = ctx;
    const constructs: string[] = [];
    for (const r of redirs) {
      this.substitutions(r.target.parts, ctx);
      const target = fieldText(r.target);
      const stdinFd = r.fd === undefined || r.fd === '0';
      const toFile =
        ['>', '>>', '>|', '&>', '&>>', '<>'].includes(r.op) ||
        (r.op === '>&' && !/^(?:[0-9]+-?|-)$/.test(target));
      if (toFile) {
        // /dev/null, /dev/stdout, /dev/fd/N … are not file writes.
        if (!NOT_A_FILE.test(target)) constructs.push('redirect-to-file', `redirect-to-file:${target}`);
      } else if (r.op === '<' && stdinFd) {
        c = { ...c, stdin: r.target.parts.some((p) => p.t === 'procsub') ? 'procsub' : 'file' };
        delete c.stdinScript;
      } else if (r.op === '<&' && stdinFd) {
        c = { ...c, stdin: 'fd' };
        delete c.stdinScript;
      } else if ((r.op === '<<' || r.op === '<<-') && r.heredoc) {
        constructs.push('here-doc');
        const h = r.heredoc;
        this.substitutions(h.parts, frame(ctx, { kind: 'here-doc' }));
        if (stdinFd) {
          c = { ...c, stdin: 'here-doc' };
          if (h.parts.length === 0) c.stdinScript = h.body;
          else delete c.stdinScript;
        }
      } else if (r.op === '<<<') {
        constructs.push('here-string');
        if (stdinFd) {
          c = { ...c, stdin: 'here-string' };
          const text = literalText(r.target);
          if (text !== undefined) c.stdinScript = `${text}\n`;
          else delete c.stdinScript;
        }
      }
    }
    if (own) own.push(...constructs);
    else if (constructs.length > 0) c = { ...c, constructs: unique([...c.constructs, ...constructs]) };
    return c;
  }

  /** Walks every command substitution, process substitution and `${…}`/`$((…))` body in the parts. */
  private substitutions(parts: Part[], ctx: Ctx): void {
    if (parts.every((p) => p.t === 'lit' || ((p.t === 'param' || p.t === 'arith') && p.nested.length === 0)))
      return;
    const { stdin: _stdin, stdinScript: _script, ...rest } = ctx;
    const base: Ctx = { ...rest, stdoutPiped: false, sequential: false };
    for (const p of parts) {
      if (p.t === 'cmdsub')
        this.list(p.body, frame(base, { kind: 'command-substitution' }, 'command-substitution'));
      else if (p.t === 'procsub') {
        // <(cmd): cmd's output is read through a pipe; >(cmd): cmd reads a pipe.
        const piped: Ctx = p.src.startsWith('<')
          ? { ...base, stdoutPiped: true }
          : { ...base, stdin: 'pipe' };
        this.list(p.body, frame(piped, { kind: 'process-substitution' }, 'process-substitution'));
      } else if (p.t === 'param' || p.t === 'arith') {
        for (const l of p.nested)
          this.list(l, frame(base, { kind: 'command-substitution' }, 'command-substitution'));
      }
    }
  }

  private simple(cmd: Extract<Command, { t: 'simple' }>, ctx: Ctx): void {
    // Expand with the variables known now, before substitutions run (they may be functions).
    const fields = cmd.words.flatMap((w) => this.expand(w));
    const values = cmd.assigns.map((a) => (a.value ? this.expand(a.value) : []));
    for (const a of cmd.assigns) {
      for (const w of a.array ?? (a.value ? [a.value] : [])) this.substitutions(w.parts, ctx);
    }
    const own: string[] = [];
    const c = this.redirects(cmd.redirs, ctx, own);
    for (const w of cmd.words) this.substitutions(w.parts, ctx);
    if (cmd.words.length === 0) {
      cmd.assigns.forEach((a, i) => {
        const value = values[i] ?? [];
        const known = !a.array && value.length <= 1 && value.every((f) => f.kind === 'literal');
        if (a.name === 'IFS') this.ifsChanged = true;
        if (ctx.sequential && known) this.vars.set(a.name, value[0]?.text ?? '');
        else this.vars.delete(a.name);
      });
    }
    const redirects = cmd.redirs.map((r) => ({
      op: r.op,
      target: fieldText(r.target),
      ...(r.fd ? { fd: r.fd } : {}),
    }));
    const withRedirects = { ...c, constructs: unique([...c.constructs, ...own]) };
    if (cmd.words.length === 0) {
      // `> /etc/shadow`, `x=1 >> f`: no command, but the redirections still happen.
      if (cmd.redirs.length > 0) this.emit([field(NO_COMMAND)], withRedirects, cmd.src, redirects);
      return;
    }
    this.emit(fields, withRedirects, cmd.src, redirects);
    // Any command may be a shell function that changes variables: forget what we knew.
    this.vars.clear();
  }

  // ---- one simple command: record it, then look inside what it runs ----------------------------

  private emit(argv: Field[], ctx: Ctx, text: string, redirects: RedirectInfo[] = []): void {
    const first = argv[0];
    if (!first) return;
    const args = argv.slice(1);
    const constructs = [...ctx.constructs];
    let name = first.text;
    let path: string | undefined;
    let namePattern: string | undefined;
    if (first.kind === 'dynamic') {
      name = DYNAMIC_COMMAND;
      constructs.push('dynamic-command-name');
    } else if (first.kind === 'glob') {
      name = DYNAMIC_COMMAND;
      namePattern = basename(first.text);
      constructs.push('dynamic-command-name');
    } else {
      if (first.text.includes('/')) path = first.text;
      name = basename(first.text);
      if (first.fromVar) constructs.push('dynamic-command-name');
    }
    if (args.some((a) => a.kind === 'dynamic')) constructs.push('dynamic-args');
    if (ctx.stdin === 'pipe') constructs.push('piped-input');
    if (ctx.stdoutPiped) constructs.push('piped-output');
    const concurrent = ctx.frames.some((f) => f.kind === 'pipeline' || f.kind === 'background');
    if (ctx.functions.includes(name) && concurrent) constructs.push('fork-bomb');
    const command: SimpleCommand = {
      name,
      ...(path ? { path } : {}),
      ...(namePattern ? { namePattern } : {}),
      args: args.map((a) => a.text),
      argKinds: args.map((a) => a.kind),
      redirects,
      context: ctx.frames,
      top: ctx.frames.every((f) => ['sequence', 'and-or', 'background', 'negated'].includes(f.kind)),
      constructs,
      text,
    };
    this.commands.push(command);
    if (name === DYNAMIC_COMMAND || name === NO_COMMAND) return;
    const inner: Ctx = {
      ...ctx,
      sequential: false,
      constructs: unique([...ctx.constructs, ...redirectConstructs(constructs)]),
    };
    this.inside(name, args, inner, command);
    command.constructs = unique(command.constructs);
  }

  private inside(name: string, args: Field[], ctx: Ctx, command: SimpleCommand): void {
    const add = (...cs: string[]) => command.constructs.push(...cs);
    if (name === 'eval') {
      if (args.length === 0) return;
      add('eval');
      this.code(joinFields(args), frame(ctx, { kind: 'eval' }, 'eval'), 'eval');
      return;
    }
    if (SHELLS.has(name)) {
      this.shell(name, args, ctx, command);
      return;
    }
    if (name === 'source' || name === '.') {
      const file = args[0];
      if (file && (file.procsub || isStdinPath(file.text))) {
        if (file.procsub || ctx.stdin === 'pipe' || ctx.stdin === 'procsub' || ctx.stdin === 'fd')
          add('pipe-to-shell');
        else if (ctx.stdinScript !== undefined)
          this.code(field(ctx.stdinScript), frame(ctx, { kind: 'here-doc', name }), 'here-doc');
      } else if (file) add('script');
      return;
    }
    for (const [re, flags] of INTERPRETER_CODE_FLAGS) {
      if (!re.test(name)) continue;
      const inline = (a: Field) =>
        flags.includes(a.text) ||
        flags.some((f) => f.length === 2 && new RegExp(`^-[A-Za-z]*${f.charAt(1)}`).test(a.text));
      if (args.some(inline)) {
        add('interpreter-code');
      } else if (
        args.every((a) => a.text.startsWith('-') && a.text !== '-m') ||
        args.some((a) => a.text === '-')
      ) {
        if (ctx.stdin === 'pipe' || ctx.stdin === 'procsub' || ctx.stdin === 'fd') add('pipe-to-shell');
      }
      return;
    }
    if (name === 'alias') {
      for (const a of args) {
        const eq = a.text.indexOf('=');
        if (eq <= 0) continue;
        add('alias');
        this.code(
          { ...a, text: a.text.slice(eq + 1) },
          frame(ctx, { kind: 'alias', name: a.text.slice(0, eq) }),
          'alias',
        );
      }
      return;
    }
    if (name === 'trap') {
      const ops = args.filter((a) => !/^-[lp-]*$/.test(a.text));
      const action = ops[0];
      if (action && ops.length > 1 && action.text !== '-' && action.text !== '') {
        add('trap');
        this.code(action, frame(ctx, { kind: 'trap' }), 'trap');
      }
      return;
    }
    if (name === 'find') {
      for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (!a || !['-exec', '-execdir', '-ok', '-okdir'].includes(a.text)) continue;
        let j = i + 1;
        while (j < args.length && args[j]?.text !== ';' && args[j]?.text !== '+') j++;
        add('find-exec');
        // `{}` is replaced by each file found: a dynamic argument.
        const argv = args
          .slice(i + 1, j)
          .map((f): Field => (f.text.includes('{}') ? { ...f, kind: 'dynamic' } : f));
        this.emit(argv, frame(ctx, { kind: 'wrapper', name }, 'find-exec'), joinFields(argv).text);
        i = j;
      }
      return;
    }
    const spec = WRAPPERS[name];
    if (!spec) return;
    this.wrapper(name, spec, args, ctx, command);
  }

  private wrapper(name: string, spec: OptSpec, args: Field[], ctx: Ctx, command: SimpleCommand): void {
    const add = (...cs: string[]) => command.constructs.push(...cs);
    const privileged = ['sudo', 'doas', 'pkexec', 'su', 'runuser'].includes(name);
    const construct = privileged ? 'sudo' : name === 'xargs' ? 'xargs' : undefined;
    if (construct) add(construct);
    let inner = frame(ctx, { kind: 'wrapper', name }, construct);
    // xargs appends arguments read from stdin: the command's arguments are not all visible.
    if (name === 'xargs') inner = { ...inner, constructs: unique([...inner.constructs, 'dynamic-args']) };
    const parsed = parseOptions(args, spec);
    if (parsed === 'dynamic') {
      this.emit([dynamicField(joinFields(args).text)], inner, joinFields(args).text);
      return;
    }
    if (parsed.noExec) return;
    for (const code of parsed.shellCode) {
      add('shell-c');
      this.code(code, frame(inner, { kind: 'shell-c', name }, 'shell-c'), 'shell-c');
    }
    let operands = parsed.operands;
    if (name === 'env') {
      const split = parsed.values.get('S') ?? parsed.values.get('split-string');
      while (operands[0] && /^[A-Za-z_][A-Za-z0-9_]*=/.test(operands[0].text)) operands = operands.slice(1);
      if (split) operands = [...this.splitWords(split), ...operands];
    }
    if (name === 'sudo' || name === 'doas') {
      while (operands[0] && /^[A-Za-z_][A-Za-z0-9_]*=/.test(operands[0].text)) operands = operands.slice(1);
      if (
        (parsed.flags.has('s') ||
          parsed.flags.has('i') ||
          parsed.flags.has('shell') ||
          parsed.flags.has('login')) &&
        operands.length > 0
      ) {
        add('shell-c'); // sudo -s/-i cmd… runs "$SHELL -c 'cmd …'"
        this.code(joinFields(operands), frame(inner, { kind: 'shell-c', name }, 'shell-c'), 'shell-c');
        return;
      }
      if (['s', 'i', 'shell', 'login'].some((f) => parsed.flags.has(f)) && operands.length === 0) {
        this.shellStdin(name, inner, command); // sudo -s / -i: a shell reading stdin
        return;
      }
    }
    if (spec.noCommandOperands) {
      // su/runuser without -c start a shell for the user: it reads stdin.
      if ((name === 'su' || name === 'runuser') && parsed.shellCode.length === 0)
        this.shellStdin(name, inner, command);
      return;
    }
    if (name === 'ssh') {
      // ssh [options] destination [command …]: the remote user's shell runs the joined words.
      if (operands.length > 0)
        this.code(joinFields(operands), frame(inner, { kind: 'shell-c', name }, 'ssh-remote'), 'ssh');
      return;
    }
    if (name === 'flock') {
      // flock [options] file -c command | flock [options] file command [args…]
      const [, second, third] = operands;
      if (second && (second.text === '-c' || second.text === '--command')) {
        if (third) {
          add('shell-c');
          this.code(third, frame(inner, { kind: 'shell-c', name }, 'shell-c'), 'shell-c');
        }
        return;
      }
      operands = operands.slice(1);
    }
    if (name === 'busybox' && operands[0]?.text === '--') operands = operands.slice(1);
    if (name === 'xargs' && operands.length === 0) operands = [field('echo')];
    if (name === 'chroot' && operands.length === 0) return;
    if (operands.length === 0) return;
    if (JOINING_WRAPPERS.has(name) && !parsed.flags.has('x') && !parsed.flags.has('exec')) {
      this.code(joinFields(operands), frame(inner, { kind: 'shell-c', name }), 'shell-c');
      return;
    }
    this.emit(operands, inner, joinFields(operands).text);
  }

  private shell(name: string, args: Field[], ctx: Ctx, command: SimpleCommand): void {
    const add = (...cs: string[]) => command.constructs.push(...cs);
    let i = 0;
    let hasC = false;
    let readsStdin = false;
    for (; i < args.length; i++) {
      const a = args[i];
      if (!a) break;
      if (a.procsub) break; // `bash <(…)`: a script operand
      if (a.kind !== 'literal') {
        // An option we cannot read could be -c: treat the rest as unknown shell code.
        add('shell-c');
        this.emit(
          [dynamicField(joinFields(args).text)],
          frame(ctx, { kind: 'shell-c', name }, 'shell-c'),
          joinFields(args).text,
        );
        return;
      }
      const t = a.text;
      if (t === '--' || t === '-') {
        i++;
        break;
      }
      if (t.startsWith('--')) {
        if (t === '--command' || t === '--rcfile' || t === '--init-file') {
          if (t === '--command') hasC = true;
          else i++;
        } else if (t.startsWith('--command=')) {
          add('shell-c');
          this.code({ ...a, text: t.slice(10) }, frame(ctx, { kind: 'shell-c', name }, 'shell-c'), 'shell-c');
          return;
        }
        continue;
      }
      if ((t.startsWith('-') || t.startsWith('+')) && t.length > 1) {
        for (const letter of t.slice(1)) {
          if (letter === 'c') hasC = true;
          else if (letter === 's') readsStdin = true;
          else if (letter === 'o' || letter === 'O') i++;
        }
        continue;
      }
      break;
    }
    const operands = args.slice(i);
    if (hasC) {
      const code = operands[0];
      if (!code) return;
      add('shell-c');
      this.code(code, frame(ctx, { kind: 'shell-c', name }, 'shell-c'), 'shell-c');
      return;
    }
    const script = operands[0];
    if (script && !readsStdin && !isStdinPath(script.text)) {
      if (script.procsub) add('pipe-to-shell');
      else add('script');
      return;
    }
    this.shellStdin(name, ctx, command);
  }

  /** A shell that reads its commands from stdin (`sh`, `bash -s`, `su user`, `sudo -s`). */
  private shellStdin(name: string, ctx: Ctx, command: SimpleCommand): void {
    if (ctx.stdin === 'pipe' || ctx.stdin === 'procsub' || ctx.stdin === 'fd') {
      command.constructs.push('pipe-to-shell');
    } else if (ctx.stdin === 'here-doc' || ctx.stdin === 'here-string') {
      if (ctx.stdinScript === undefined) command.constructs.push('pipe-to-shell');
      else {
        const c = { ...ctx };
        delete c.stdin;
        delete c.stdinScript;
        this.code(field(ctx.stdinScript), frame(c, { kind: 'here-doc', name }), 'here-doc');
      }
    } else if (ctx.stdin === 'file') command.constructs.push('script');
  }

  /** Shell code in a string: parsed and walked when literal, a dynamic command otherwise. */
  private code(source: Field, ctx: Ctx, what: string): void {
    if (source.kind !== 'literal') {
      this.emit([dynamicField(source.text)], ctx, source.text);
      return;
    }
    if (ctx.depth >= MAX_NESTED_DEPTH)
      throw new AnalysisProblem(`${what} strings are nested too deeply to analyse`);
    const result = parseChecked(this.sh, source.text);
    if (!result.ok) throw new AnalysisProblem(`${what} string does not parse: ${result.error.message}`);
    const saved = this.vars;
    this.vars = new Map();
    this.list(result.list, { ...ctx, depth: ctx.depth + 1, sequential: false });
    this.vars = saved;
    this.vars.clear();
  }

  /** `env -S 'string'`: split like a simple command's words. */
  private splitWords(source: Field): Field[] {
    if (source.kind !== 'literal') return [dynamicField(source.text)];
    let list: List;
    try {
      list = new Parser(source.text).parseProgram();
    } catch {
      return [dynamicField(source.text)];
    }
    const cmd = list.stmts[0]?.andOr.items[0]?.cmds[0];
    if (list.stmts.length !== 1 || !cmd || cmd.t !== 'simple') return [dynamicField(source.text)];
    return cmd.words.flatMap((w) => this.expand(w));
  }

  // ---- expansion ------------------------------------------------------------------------------

  /** A word's fields after brace expansion and quote removal (variables known on this line resolved). */
  expand(word: Word): Field[] {
    const units: Unit[] = [];
    let fromVar = false;
    const onlyPart = word.parts.length === 1 ? word.parts[0] : undefined;
    // An unquoted `$X` alone, X known: split into fields like the shell would (default IFS only).
    if (onlyPart?.t === 'param' && !onlyPart.q && onlyPart.name && !this.ifsChanged) {
      const value = this.vars.get(onlyPart.name);
      if (value !== undefined) {
        return value
          .split(/[ \t\n]+/)
          .filter((s) => s !== '')
          .map((text) => ({
            text,
            kind: /[*?[]/.test(text) ? 'glob' : 'literal',
            procsub: false,
            fromVar: true,
          }));
      }
    }
    for (const p of word.parts) {
      if (p.t === 'lit') {
        for (const c of p.v) units.push({ c, q: p.q });
      } else if (
        p.t === 'param' &&
        p.name &&
        this.vars.has(p.name) &&
        (p.q || !/[ \t\n*?[]/.test(this.vars.get(p.name) ?? ''))
      ) {
        fromVar = true;
        for (const c of this.vars.get(p.name) ?? '') units.push({ c, q: true });
      } else {
        units.push({ c: p.src, q: true, dyn: p.t === 'procsub' ? 'procsub' : 'dyn' });
      }
    }
    const expanded = braceExpand(units);
    if (expanded === undefined) return [dynamicField(word.src)];
    return expanded.map((us) => {
      const text = us.map((u) => u.c).join('');
      const dynamic = us.some((u) => u.dyn !== undefined);
      const procsub = us.some((u) => u.dyn === 'procsub');
      const kind: ArgKind = dynamic ? 'dynamic' : isGlob(us) ? 'glob' : 'literal';
      return { text, kind, procsub, fromVar };
    });
  }
}

function frame(ctx: Ctx, f: ContextFrame, construct?: string): Ctx {
  return {
    ...ctx,
    frames: [...ctx.frames, f],
    constructs: construct ? unique([...ctx.constructs, construct]) : ctx.constructs,
  };
}

function redirectConstructs(constructs: string[]): string[] {
  return constructs.filter(
    (c) => c.startsWith('redirect-to-file') || c === 'here-doc' || c === 'here-string',
  );
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  return slash < 0 ? path : trimmed.slice(slash + 1) || path;
}

function isStdinPath(p: string): boolean {
  return p === '-' || p === '/dev/stdin' || p === '/dev/fd/0' || p === '/proc/self/fd/0';
}

function field(text: string): Field {
  return { text, kind: 'literal', procsub: false, fromVar: false };
}

function dynamicField(text: string): Field {
  return { text, kind: 'dynamic', procsub: false, fromVar: false };
}

/** Fields joined by spaces the way `eval` and `sudo -s` join their arguments. */
function joinFields(fields: Field[]): Field {
  const text = fields.map((f) => f.text).join(' ');
  return {
    text,
    kind: fields.every((f) => f.kind !== 'dynamic') ? 'literal' : 'dynamic',
    procsub: false,
    fromVar: false,
  };
}

/** A redirection target as text (quotes removed, dynamic parts as written). */
function fieldText(word: Word): string {
  return word.parts.map((p) => (p.t === 'lit' ? p.v : p.src)).join('');
}

function isGlob(units: Unit[]): boolean {
  let open = false;
  let previous: Unit | undefined;
  for (const u of units) {
    if (!u.q) {
      if (u.c === '*' || u.c === '?') return true;
      if (u.c === '[') open = true;
      if (u.c === ']' && open) return true;
      if (u.c === '(' && previous && !previous.q && '@!+'.includes(previous.c)) return true; // extglob
    }
    previous = u;
  }
  return false;
}

/**
 * Bash brace expansion over units (`{a,b}`, `{1..3}`, `{a..c}`), only on unquoted braces. Returns
 * undefined when the result would exceed MAX_BRACE_FIELDS (the word is then treated as dynamic).
 */
function braceExpand(units: Unit[]): Unit[][] | undefined {
  const out: Unit[][] = [];
  const queue: Unit[][] = [units];
  while (queue.length > 0) {
    const us = queue.shift() ?? [];
    const found = findBrace(us);
    if (!found) {
      out.push(us);
    } else {
      const { open, close, alternatives } = found;
      for (const alt of alternatives) queue.push([...us.slice(0, open), ...alt, ...us.slice(close + 1)]);
    }
    if (out.length + queue.length > MAX_BRACE_FIELDS) return undefined;
  }
  return out;
}

function findBrace(us: Unit[]): { open: number; close: number; alternatives: Unit[][] } | undefined {
  for (let open = 0; open < us.length; open++) {
    const u = us[open];
    if (!u || u.q || u.c !== '{') continue;
    let depth = 0;
    const commas: number[] = [];
    for (let i = open + 1; i < us.length; i++) {
      const v = us[i];
      if (!v || v.q) continue;
      if (v.c === '{') depth++;
      else if (v.c === '}') {
        if (depth > 0) {
          depth--;
          continue;
        }
        if (commas.length > 0) {
          const bounds = [open, ...commas, i];
          const alternatives = bounds.slice(0, -1).map((b, k) => us.slice(b + 1, bounds[k + 1]));
          return { open, close: i, alternatives };
        }
        const seq = sequence(us.slice(open + 1, i));
        if (seq) return { open, close: i, alternatives: seq.map((s) => [...s].map((c) => ({ c, q: true }))) };
        break;
      } else if (v.c === ',' && depth === 0) commas.push(i);
    }
  }
  return undefined;
}

function sequence(inner: Unit[]): string[] | undefined {
  if (inner.some((u) => u.dyn !== undefined)) return undefined;
  const text = inner.map((u) => u.c).join('');
  const m = /^(-?[0-9]+|[A-Za-z])\.\.(-?[0-9]+|[A-Za-z])(?:\.\.(-?[0-9]+))?$/.exec(text);
  if (!m) return undefined;
  const [, a = '', b = '', stepText] = m;
  const step = Math.abs(Number(stepText ?? 1)) || 1;
  const numeric = /[0-9]/.test(a) && /[0-9]/.test(b);
  if (!numeric && (/[0-9]/.test(a) || /[0-9]/.test(b))) return undefined;
  const from = numeric ? Number(a) : a.charCodeAt(0);
  const to = numeric ? Number(b) : b.charCodeAt(0);
  if (Math.abs(to - from) / step > MAX_BRACE_FIELDS) return undefined; // left as written
  const width = numeric && (/^-?0[0-9]/.test(a) || /^-?0[0-9]/.test(b)) ? Math.max(a.length, b.length) : 0;
  const out: string[] = [];
  for (let v = from; from <= to ? v <= to : v >= to; v += from <= to ? step : -step) {
    out.push(numeric ? String(v).padStart(width, '0') : String.fromCharCode(v));
  }
  return out;
}

interface ParsedOptions {
  operands: Field[];
  flags: Set<string>;
  values: Map<string, Field>;
  shellCode: Field[];
  noExec: boolean;
}

/** Generic getopt-style option skipping for wrappers. 'dynamic' when an option is not literal. */
function parseOptions(args: Field[], spec: OptSpec): ParsedOptions | 'dynamic' {
  const flags = new Set<string>();
  const values = new Map<string, Field>();
  const shellCode: Field[] = [];
  let noExec = false;
  const take = (opt: string, value: Field | undefined) => {
    if (!value) return;
    if (spec.shellCode?.includes(opt)) shellCode.push(value);
    values.set(opt, value);
  };
  const permuted: Field[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i];
    if (!a) break;
    const t = a.text;
    if (a.kind === 'dynamic' && t.startsWith('$')) return 'dynamic';
    if (t === '--') {
      i++;
      break;
    }
    if (t.startsWith('--') && t.length > 2) {
      const eq = t.indexOf('=');
      const opt = eq < 0 ? t.slice(2) : t.slice(2, eq);
      flags.add(opt);
      if (spec.noExec?.includes(opt)) noExec = true;
      const wantsValue = spec.arg.includes(opt) || spec.shellCode?.includes(opt);
      if (eq >= 0) take(opt, { ...a, text: t.slice(eq + 1) });
      else if (wantsValue) take(opt, args[++i]);
      continue;
    }
    if (t.startsWith('-') && t.length > 1) {
      for (let k = 1; k < t.length; k++) {
        const letter = t.charAt(k);
        flags.add(letter);
        if (spec.noExec?.includes(letter)) noExec = true;
        if (spec.arg.includes(letter) || spec.shellCode?.includes(letter)) {
          const rest = t.slice(k + 1);
          take(letter, rest ? { ...a, text: rest } : args[++i]);
          break;
        }
      }
      continue;
    }
    if (!spec.permute) break;
    permuted.push(a);
  }
  const rest = [...permuted, ...args.slice(i)];
  const operands = rest.slice(Math.min(spec.skipOperands ?? 0, rest.length));
  return { operands, flags, values, shellCode, noExec };
}

// ---------------------------------------------------------------------------------------------
// Entry points

type CheckedParse =
  | { ok: true; list: List }
  | { ok: false; error: { message: string; position?: number; incomplete?: boolean } };

/** Grammar check with sh-syntax, structural parse, and the cross-check between the two. */
function parseChecked(shParser: ShSyntax, text: string): CheckedParse {
  const grammar = shParser.parse(text);
  const toChar = byteToCharOffsets(text);
  if (!grammar.ok) {
    const position = grammar.offset === undefined ? undefined : (toChar(grammar.offset) ?? 0) + 1;
    return {
      ok: false,
      error: {
        message: grammar.message,
        ...(position === undefined ? {} : { position }),
        ...(grammar.incomplete ? { incomplete: true } : {}),
      },
    };
  }
  const parser = new Parser(text);
  let list: List;
  try {
    list = parser.parseProgram();
  } catch (err) {
    if (!(err instanceof SyntaxProblem)) throw err;
    return {
      ok: false,
      error: { message: `the guard cannot analyse this line: ${err.message}`, position: err.pos + 1 },
    };
  }
  const mismatch = crossCheck(parser.top, grammar.stmts, toChar);
  if (mismatch) {
    return {
      ok: false,
      error: { message: `the guard's parser and the shell grammar disagree about this line (${mismatch})` },
    };
  }
  return { ok: true, list };
}

function crossCheck(
  mine: Parser['top'],
  theirs: ShStmt[],
  toChar: (b: number) => number | undefined,
): string | undefined {
  if (mine.length !== theirs.length) return `${theirs.length} statement(s), not ${mine.length}`;
  for (let i = 0; i < mine.length; i++) {
    const a = mine[i];
    const b = theirs[i];
    if (!a || !b) return 'statement count';
    if (a.start !== toChar(b.Pos.Offset)) return `statement ${i + 1} start`;
    if (a.background !== b.Background) return `statement ${i + 1} background`;
    if (!a.redirs) continue;
    if (a.redirs.length !== b.Redirs.length) return `statement ${i + 1} redirections`;
    for (let k = 0; k < a.redirs.length; k++) {
      const r = a.redirs[k];
      const s = b.Redirs[k];
      if (!r || !s) return `statement ${i + 1} redirections`;
      const sameOp = r.op === s.Op && (r.fd ?? '') === (s.N?.Value ?? '');
      const sameWord =
        r.targetStart === toChar(s.Word.Pos.Offset) && r.targetEnd === toChar(s.Word.End.Offset);
      if (!sameOp || !sameWord) return `statement ${i + 1} redirection ${k + 1}`;
    }
  }
  return undefined;
}

/** UTF-8 byte offset → UTF-16 offset in `text`. */
function byteToCharOffsets(text: string): (byteOffset: number) => number | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII fast path
  if (/^[\x00-\x7f]*$/.test(text)) return (b) => b;
  const map = new Map<number, number>();
  let bytes = 0;
  let i = 0;
  for (const ch of text) {
    map.set(bytes, i);
    bytes += Buffer.byteLength(ch, 'utf8');
    i += ch.length;
  }
  map.set(bytes, i);
  return (b) => map.get(b);
}

export interface AnalyzeOptions {
  /**
   * The line is typed into an interactive shell (default true). Interactive bash performs history
   * expansion (`!!`, `!rm`, `!$`, `^old^new`) on the line BEFORE parsing it, with text the gateway
   * cannot see: every command of such a line gets the `history-expansion` construct. Pass false for
   * exec commands (`bash -c` does no history expansion).
   */
  interactive?: boolean;
}

/**
 * Offset of the first history expansion interactive bash would perform on `line` (default
 * settings: `!` is the expansion character, `^` the quick-substitution one), or -1. Follows bash's
 * rules: not inside single quotes, not after a backslash, not before a blank, `=` or end of line,
 * not `$!`, `${!var}`, `[!…]`, `!(…)`, nor `!` right before the closing double quote.
 */
export function historyExpansionAt(line: string): number {
  if (line.startsWith('^')) return 0;
  let single = false;
  let double = false;
  for (let i = 0; i < line.length; i++) {
    const c = line.charAt(i);
    if (single) {
      if (c === "'") single = false;
      continue;
    }
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === "'" && !double) single = true;
    else if (c === '"') double = !double;
    if (c !== '!') continue;
    const next = line.charAt(i + 1);
    const prev = line.charAt(i - 1);
    if (next === '' || ' \t\n\r='.includes(next)) continue;
    if (double && next === '"') continue;
    if (prev === '$') continue;
    if (prev === '[' && line.includes(']', i + 1)) continue;
    if (prev === '{' && line.charAt(i - 2) === '$' && line.includes('}', i + 1)) continue;
    if (next === '(' && line.includes(')', i + 2)) continue;
    return i;
  }
  return -1;
}

/**
 * Parses a submitted command line and collects every simple command in it. Never throws for bad
 * input: problems come back as `{ ok: false }` (and the evaluator blocks). An empty or comment-only
 * line is `{ ok: true, commands: [] }`. Throws only if `initShellParser` was not awaited.
 */
export function analyzeCommandLine(line: string, options: AnalyzeOptions = {}): ShellAnalysis {
  if (!sh) throw new Error('initShellParser() must be awaited before analyzeCommandLine()');
  if (line.includes('\0')) {
    return {
      ok: false,
      error: { message: 'command line contains a NUL character', position: line.indexOf('\0') + 1 },
    };
  }
  if (Buffer.byteLength(line, 'utf8') > MAX_LINE_BYTES) {
    return { ok: false, error: { message: `command line is longer than ${MAX_LINE_BYTES} bytes` } };
  }
  try {
    const parsed = parseChecked(sh, line);
    if (!parsed.ok) return parsed;
    const walker = new Walker(sh);
    walker.list(parsed.list, {
      frames: [],
      constructs: [],
      stdoutPiped: false,
      sequential: true,
      functions: [],
      depth: 0,
    });
    if (options.interactive !== false && historyExpansionAt(line) >= 0) {
      for (const c of walker.commands) c.constructs.push('history-expansion');
    }
    const constructs = unique(walker.commands.flatMap((c) => c.constructs));
    return { ok: true, commands: walker.commands, constructs };
  } catch (err) {
    if (err instanceof AnalysisProblem) return { ok: false, error: { message: err.message } };
    // Anything unexpected (a WASM trap twice in a row, a stack overflow) fails closed.
    return {
      ok: false,
      error: {
        message: `command line could not be analysed: ${err instanceof Error ? err.message : String(err)}`,
      },
    };
  }
}
