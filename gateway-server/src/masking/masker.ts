import { z } from 'zod';
import {
  DETECTOR_IDS,
  DETECTORS,
  type Detector,
  type DetectorId,
  FAST_DETECTORS,
  FAST_MIN_LENGTH,
  type FastDetector,
  findKeyBlockEnd,
  isDetectorId,
  type Match,
  type Pending,
  type TextFeatures,
  TextIndex,
  textFeatures,
} from './detectors';
import { createHasher, FULL_MASK, type Hasher, type MaskStrategy, maskPartial } from './strategies';

// --------------------------------------------------------------------- config

const StrategySchema = z.enum(['full', 'partial', 'hash', 'null']);

function isValidColumnPattern(pattern: string): boolean {
  const parts = pattern.split('.');
  return parts.length >= 1 && parts.length <= 3 && parts.every((p) => p.length > 0);
}

export const MaskingConfigSchema = z.object({
  /** Detector ids to run on every value (default: all). */
  detectors: z
    .array(
      z.string().refine(isDetectorId, { message: `unknown detector; known: ${DETECTOR_IDS.join(', ')}` }),
    )
    .default(() => [...DETECTOR_IDS]),
  /** Strategy for values found by detectors. */
  detectorStrategy: StrategySchema.default('partial'),
  /**
   * Column rules, first match wins. Pattern: 'schema.table.column', 'table.column' or
   * 'column'; '*' is a wildcard inside a part; case-insensitive. Parts the gateway does
   * not know for a column (computed columns have no table) match anything.
   */
  columns: z
    .array(
      z.object({
        pattern: z.string().refine(isValidColumnPattern, {
          message: "expected 'column', 'table.column' or 'schema.table.column'",
        }),
        strategy: StrategySchema,
      }),
    )
    .default(() => []),
});

export type MaskingConfig = z.output<typeof MaskingConfigSchema>;
export type MaskingConfigInput = z.input<typeof MaskingConfigSchema>;

// ------------------------------------------------------------------------ API

export interface ColumnRef {
  schema?: string;
  table?: string;
  name: string;
}

export interface CellMaskResult {
  value: string | null;
  masked: boolean;
  /** e.g. ['column:customers.email'] or ['detector:email', 'detector:card'] */
  reasons: string[];
}

export interface TextMaskResult {
  text: string;
  masked: boolean;
  reasons: string[];
}

export interface TextStreamMasker {
  /** Feeds a chunk; returns the text that is safe to emit now (masked). */
  push(chunk: string): string;
  /**
   * Emits text held only for weak reasons (a trailing word that could still become an
   * e-mail's local part, the first letters of a known prefix). Call it when the
   * stream has been idle for a moment; digits, '@…' and recognised prefixes stay held.
   */
  drain(): string;
  /** End of stream: returns everything still held, masked. The masker can be reused afterwards. */
  flush(): string;
}

export interface StreamOptions {
  /**
   * Terminal mode (default true): a push of at most INTERACTIVE_CHUNK_MAX characters
   * without a newline is treated as keyboard echo and only strong candidates are held
   * back. False gives exact results (identical to maskText of the whole stream) for
   * any chunking, at the cost of holding trailing words until the next chunk.
   */
  interactive?: boolean;
}

export interface Masker {
  readonly detectors: readonly DetectorId[];
  maskCell(value: string | null, column?: ColumnRef): CellMaskResult;
  maskText(text: string): TextMaskResult;
  createStream(options?: StreamOptions): TextStreamMasker;
}

/** Pushes up to this size without '\n' are treated as keyboard echo in interactive mode. */
export const INTERACTIVE_CHUNK_MAX = 128;
/** Largest amount of text held back for one candidate (private key, long token) before failing closed. */
export const STREAM_HOLD_CAP = 16 * 1024;
/** Characters of already-emitted text kept as left context for detection. */
const CONTEXT_CHARS = 64;
/** Longest text maskText remembers for a repeat. */
const LAST_TEXT_MAX = 16 * 1024;
const KEY_END_TAIL = 128;

// --------------------------------------------------------------- column rules

interface CompiledRule {
  reason: string;
  strategy: MaskStrategy;
  schema: ((s: string) => boolean) | null;
  table: ((s: string) => boolean) | null;
  name: (s: string) => boolean;
}

interface CachedRule {
  name: string;
  table: string | undefined;
  schema: string | undefined;
  rule: CompiledRule | null;
}

function compilePart(part: string): (s: string) => boolean {
  if (part === '*') return () => true;
  const lower = part.toLowerCase();
  if (!part.includes('*')) return (s) => s.toLowerCase() === lower;
  const re = new RegExp(
    `^${lower
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    'i',
  );
  return (s) => re.test(s);
}

function compileRule(pattern: string, strategy: MaskStrategy): CompiledRule {
  const parts = pattern.split('.');
  const name = compilePart(parts[parts.length - 1]!);
  const table = parts.length >= 2 ? compilePart(parts[parts.length - 2]!) : null;
  const schema = parts.length === 3 ? compilePart(parts[0]!) : null;
  return { reason: `column:${pattern}`, strategy, schema, table, name };
}

function ruleMatches(rule: CompiledRule, column: ColumnRef): boolean {
  if (!rule.name(column.name)) return false;
  if (rule.table && column.table && !rule.table(column.table)) return false;
  if (rule.schema && column.schema && !rule.schema(column.schema)) return false;
  return true;
}

// ----------------------------------------------------------- ANSI / the view

/**
 * Detection runs on a "view" of terminal text: SGR (colour) sequences and charset
 * designations are removed, so a coloured value is still one value; every other
 * escape sequence (cursor movement, erase, OSC titles…) becomes '\n', a separator.
 */
interface View {
  view: string;
  /**
   * The view as segments, each a run of raw text or the '\n' standing for an escape sequence:
   * segment k starts at view index segView[k] and raw index segRaw[k]. null = identity.
   */
  segView: number[] | null;
  segRaw: number[];
  /** raw length covered by the view (an incomplete trailing escape is excluded). */
  complete: number;
}

const NO_SEGMENTS: number[] = [];

const ESC = '\x1b';
const CSI_MAX = 256;
const STRING_SEQ_MAX = 4096;
const INCOMPLETE = -1;

/** Returns (end << 1) | silent, or INCOMPLETE. */
function parseEscape(raw: string, e: number): number {
  const n = raw.length;
  if (e + 1 >= n) return INCOMPLETE;
  const c = raw.charCodeAt(e + 1);
  if (c === 0x5b) {
    for (let j = e + 2; j < n; j++) {
      const d = raw.charCodeAt(j);
      if (d >= 0x40 && d <= 0x7e) return ((j + 1) << 1) | (d === 0x6d ? 1 : 0);
      if (d < 0x20 || d > 0x3f || j - e > CSI_MAX) return j << 1;
    }
    return INCOMPLETE;
  }
  if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) {
    for (let j = e + 2; j < n; j++) {
      const d = raw.charCodeAt(j);
      if (d === 0x07) return (j + 1) << 1;
      if (d === 0x1b) {
        if (j + 1 >= n) return INCOMPLETE;
        return raw.charCodeAt(j + 1) === 0x5c ? (j + 2) << 1 : j << 1;
      }
      if (j - e > STRING_SEQ_MAX) return j << 1;
    }
    return INCOMPLETE;
  }
  if (c >= 0x20 && c <= 0x2f) {
    for (let j = e + 2; j < n; j++) {
      const d = raw.charCodeAt(j);
      if (d >= 0x20 && d <= 0x2f && j - e < 16) continue;
      if (d >= 0x30 && d <= 0x7e) return ((j + 1) << 1) | (c >= 0x28 && c <= 0x2b ? 1 : 0);
      return j << 1;
    }
    return INCOMPLETE;
  }
  if (c >= 0x30 && c <= 0x7e) return (e + 2) << 1;
  return (e + 1) << 1;
}

function toView(raw: string, final: boolean): View {
  if (raw.indexOf(ESC) === -1) return { view: raw, segView: null, segRaw: NO_SEGMENTS, complete: raw.length };
  const n = raw.length;
  const segView: number[] = [];
  const segRaw: number[] = [];
  const parts: string[] = [];
  let v = 0;
  let i = 0;
  let complete = n;
  while (i < n) {
    let e = raw.indexOf(ESC, i);
    if (e === -1) e = n;
    if (e > i) {
      parts.push(raw.slice(i, e));
      segView.push(v);
      segRaw.push(i);
      v += e - i;
    }
    if (e === n) break;
    let r = parseEscape(raw, e);
    if (r === INCOMPLETE) {
      if (!final) {
        complete = e;
        break;
      }
      r = n << 1;
    }
    if ((r & 1) === 0) {
      parts.push('\n');
      segView.push(v);
      segRaw.push(e);
      v++;
    }
    i = r >> 1;
  }
  return { view: parts.join(''), segView, segRaw, complete };
}

/** Raw index of view character i; `complete` for i = view.length. */
function rawIndex(v: View, i: number): number {
  const sv = v.segView;
  if (sv === null) return i;
  if (i >= v.view.length) return v.complete;
  let lo = 0;
  let hi = sv.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sv[mid]! <= i) lo = mid;
    else hi = mid - 1;
  }
  return v.segRaw[lo]! + (i - sv[lo]!);
}

/** Splits a raw segment into its visible text and its escape sequences (kept in order). */
function splitEscapes(seg: string): { text: string; escapes: string } {
  let text = '';
  let escapes = '';
  let i = 0;
  while (i < seg.length) {
    const e = seg.indexOf(ESC, i);
    if (e === -1) {
      text += seg.slice(i);
      break;
    }
    text += seg.slice(i, e);
    const r = parseEscape(seg, e);
    const end = r === INCOMPLETE ? seg.length : r >> 1;
    escapes += seg.slice(e, end);
    i = end;
  }
  return { text, escapes };
}

function escapesOf(seg: string): string {
  return seg.indexOf(ESC) === -1 ? '' : splitEscapes(seg).escapes;
}

// -------------------------------------------------------------------- masker

interface Span {
  start: number;
  end: number;
  ids: DetectorId[];
}

const NO_SPANS: readonly Span[] = Object.freeze([]);

/** Sorts spans (stable) and merges overlapping ones, uniting their detector ids. */
function mergeSpans(spans: Span[] | null): readonly Span[] {
  if (spans === null) return NO_SPANS;
  if (spans.length === 1) return spans;
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Span[] = [spans[0]!];
  for (let i = 1; i < spans.length; i++) {
    const s = spans[i]!;
    const last = merged[merged.length - 1]!;
    if (s.start < last.end) {
      if (s.end > last.end) last.end = s.end;
      for (const id of s.ids) if (!last.ids.includes(id)) last.ids.push(id);
    } else merged.push(s);
  }
  return merged;
}

class MaskerImpl implements Masker {
  readonly detectors: readonly DetectorId[];
  private readonly dets: readonly Detector[];
  private readonly fast: readonly FastDetector[];
  private readonly minLength: number;
  private readonly rules: readonly CompiledRule[];
  private readonly strategy: MaskStrategy;
  private readonly hasher: Hasher;
  private readonly ruleByObject = new WeakMap<ColumnRef, CachedRule>();
  private readonly ruleByKey = new Map<string, CompiledRule | null>();
  private readonly features: TextFeatures = textFeatures('');

  constructor(config: MaskingConfig, hashKey: Uint8Array) {
    this.hasher = createHasher(hashKey);
    const ids = DETECTOR_IDS.filter((id) => config.detectors.includes(id));
    this.detectors = ids;
    this.dets = ids.map((id) => DETECTORS[id]);
    this.fast = ids.map((id) => FAST_DETECTORS[id]);
    this.minLength = this.dets.reduce((m, d) => Math.min(m, d.minLength), Number.POSITIVE_INFINITY);
    this.strategy = config.detectorStrategy;
    this.rules = config.columns.map((c) => compileRule(c.pattern, c.strategy));
  }

  // ---- detection

  /** Sorted, merged spans of all enabled detectors. */
  detect(text: string): readonly Span[] {
    const n = text.length;
    if (n < this.minLength) return NO_SPANS;
    if (n >= FAST_MIN_LENGTH) return this.detectFast(text, new TextIndex(text));
    const f = textFeatures(text, this.features);
    let out: Match[] | null = null;
    let spans: Span[] | null = null;
    const dets = this.dets;
    for (let i = 0; i < dets.length; i++) {
      const d = dets[i]!;
      if (n < d.minLength || !d.mayMatch(f)) continue;
      out ??= [];
      d.scan(text, out, f);
      if (out.length === 0) continue;
      spans ??= [];
      for (const m of out) spans.push({ start: m.start, end: m.end, ids: [d.id] });
      out = null;
    }
    return mergeSpans(spans);
  }

  /** detect() for a long text, through its index (same result). */
  detectFast(text: string, ix: TextIndex): readonly Span[] {
    let out: Match[] | null = null;
    let spans: Span[] | null = null;
    const fast = this.fast;
    for (let i = 0; i < fast.length; i++) {
      out ??= [];
      fast[i]!.scan(text, out, ix);
      if (out.length === 0) continue;
      spans ??= [];
      const id = this.detectors[i]!;
      for (const m of out) spans.push({ start: m.start, end: m.end, ids: [id] });
      out = null;
    }
    return mergeSpans(spans);
  }

  /** pending() for a long text, after detectFast on the same index (same result). */
  pendingFast(text: string, strongOnly: boolean, ix: TextIndex): Pending | null {
    let best: Pending | null = null;
    for (const d of this.fast) {
      const p = d.pending(text, strongOnly, ix);
      if (p === null) continue;
      if (
        best === null ||
        p.start < best.start ||
        (p.start === best.start && KIND_RANK[p.kind] > KIND_RANK[best.kind])
      ) {
        best = p;
      }
    }
    return best;
  }

  /** Earliest undecided position over all enabled detectors (ties: longest-lived kind). */
  pending(text: string, strongOnly: boolean): Pending | null {
    let best: Pending | null = null;
    for (const d of this.dets) {
      const p = d.pending(text, strongOnly);
      if (p === null) continue;
      if (
        best === null ||
        p.start < best.start ||
        (p.start === best.start && KIND_RANK[p.kind] > KIND_RANK[best.kind])
      ) {
        best = p;
      }
    }
    return best;
  }

  // ---- replacement

  /** Replacement for a detected value inside text (a cell that is exactly the value may become null). */
  replacement(value: string, ids: readonly DetectorId[]): string {
    switch (this.strategy) {
      case 'full':
      case 'null':
        return FULL_MASK;
      case 'partial':
        return ids.includes('private-key') ? FULL_MASK : maskPartial(value);
      case 'hash': {
        const normalize = ids.length === 1 ? DETECTORS[ids[0]!].normalize : undefined;
        return this.hasher(normalize ? normalize(value) : value);
      }
    }
  }

  // ---- cells

  private ruleFor(column: ColumnRef): CompiledRule | null {
    // Callers usually pass the same column object for every row; it may be mutated
    // between calls, so a cached entry is only used while its fields are unchanged.
    const cached = this.ruleByObject.get(column);
    if (
      cached !== undefined &&
      cached.name === column.name &&
      cached.table === column.table &&
      cached.schema === column.schema
    ) {
      return cached.rule;
    }
    const key = `${column.name}\u0001${column.table ?? ''}\u0001${column.schema ?? ''}`;
    let rule = this.ruleByKey.get(key);
    if (rule === undefined) {
      rule = this.rules.find((r) => ruleMatches(r, column)) ?? null;
      if (this.ruleByKey.size > 10_000) this.ruleByKey.clear();
      this.ruleByKey.set(key, rule);
    }
    this.ruleByObject.set(column, { name: column.name, table: column.table, schema: column.schema, rule });
    return rule;
  }

  maskCell(value: string | null, column?: ColumnRef): CellMaskResult {
    if (value === null) return { value: null, masked: false, reasons: [] };
    if (column !== undefined && this.rules.length > 0) {
      const rule = this.ruleFor(column);
      if (rule !== null) {
        let masked: string | null;
        switch (rule.strategy) {
          case 'full':
            masked = FULL_MASK;
            break;
          case 'partial':
            masked = maskPartial(value);
            break;
          case 'hash':
            masked = this.hasher(value);
            break;
          case 'null':
            masked = null;
            break;
        }
        return { value: masked, masked: true, reasons: [rule.reason] };
      }
    }
    const spans = this.detect(value);
    if (spans.length === 0) return { value, masked: false, reasons: [] };
    const reasons = reasonsOf(spans);
    const only = spans[0]!;
    if (this.strategy === 'null' && spans.length === 1 && only.start === 0 && only.end === value.length) {
      return { value: null, masked: true, reasons };
    }
    let out = '';
    let pos = 0;
    for (const s of spans) {
      out += value.slice(pos, s.start) + this.replacement(value.slice(s.start, s.end), s.ids);
      pos = s.end;
    }
    out += value.slice(pos);
    return { value: out, masked: true, reasons };
  }

  // ---- text

  /**
   * Renders raw[0 .. raw index of view position `cut - base`] with the spans applied.
   * `full` = context + view; spans are in `full` coordinates; `base` = context length.
   */
  render(raw: string, v: View, spans: readonly Span[], base: number, cut: number): string {
    let out = '';
    let rawPos = 0;
    for (const s of spans) {
      if (s.end <= base) continue;
      if (s.start >= cut) break;
      const vs = Math.max(s.start, base) - base;
      const ve = Math.min(s.end, cut) - base;
      if (ve <= vs) continue;
      const rs = rawIndex(v, vs);
      const re = rawIndex(v, ve);
      out += raw.slice(rawPos, rs);
      const seg = raw.slice(rs, re);
      if (seg.indexOf(ESC) === -1) out += this.replacement(seg, s.ids);
      else {
        const { text, escapes } = splitEscapes(seg);
        out += this.replacement(text, s.ids) + escapes;
      }
      rawPos = re;
    }
    return out + raw.slice(rawPos, rawIndex(v, cut - base));
  }

  /**
   * The last text masked and its result: a statement's text is masked for the recording's batch
   * line, its ledger entry and its statement line, one after the other. Frozen, being shared.
   */
  private lastText: { text: string; result: TextMaskResult } | undefined;

  maskText(text: string): TextMaskResult {
    const last = this.lastText;
    if (last?.text === text) return last.result;
    const v = toView(text, true);
    const spans = this.detect(v.view);
    const result: TextMaskResult =
      spans.length === 0
        ? { text, masked: false, reasons: [] }
        : { text: this.render(text, v, spans, 0, v.view.length), masked: true, reasons: reasonsOf(spans) };
    Object.freeze(result.reasons);
    // Statement-sized texts only: a megabyte batch is not worth keeping in memory for a repeat.
    this.lastText = text.length <= LAST_TEXT_MAX ? { text, result: Object.freeze(result) } : undefined;
    return result;
  }

  createStream(options: StreamOptions = {}): TextStreamMasker {
    return new StreamMasker(this, options.interactive ?? true);
  }
}

const KIND_RANK: Record<Pending['kind'], number> = { bounded: 0, run: 1, block: 2 };

const DETECTOR_REASONS = Object.fromEntries(DETECTOR_IDS.map((id) => [id, `detector:${id}`])) as Record<
  DetectorId,
  string
>;

function reasonsOf(spans: readonly Span[]): string[] {
  if (spans.length === 1 && spans[0]!.ids.length === 1) return [DETECTOR_REASONS[spans[0]!.ids[0]!]];
  const reasons: string[] = [];
  for (const s of spans) {
    for (const id of s.ids) {
      const r = DETECTOR_REASONS[id];
      if (!reasons.includes(r)) reasons.push(r);
    }
  }
  return reasons;
}

const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const tail = (s: string): string => (s.length > CONTEXT_CHARS ? s.slice(-CONTEXT_CHARS) : s);

const KEY_END_MARK = '-----END ';

/** Could appending `chunk` complete an END line? (the overlap covers a marker split across pushes) */
function closesBlock(held: string, chunk: string): boolean {
  return (held.slice(-KEY_END_MARK.length - 8) + chunk).indexOf(KEY_END_MARK) !== -1;
}

function allRunChars(chunk: string, isRunChar: (c: number) => boolean): boolean {
  for (let i = 0; i < chunk.length; i++) if (!isRunChar(chunk.charCodeAt(i))) return false;
  return true;
}

type Skip = { kind: 'block'; tail: string } | { kind: 'run'; isRunChar: (c: number) => boolean };

/**
 * Streaming masker. Invariant: every emitted character has its masking decided —
 * no text that may arrive later can change it. After each push it detects on
 * (context + held text), asks every detector where the text is still undecided,
 * emits everything before that point and holds the rest. Text is held at most
 * STREAM_HOLD_CAP characters; a longer undecided candidate (an unterminated private
 * key, an endless token) is replaced by the full marker and the rest of it is
 * swallowed until it ends (fail closed).
 */
class StreamMasker implements TextStreamMasker {
  private raw = '';
  private ctx = '';
  private skip: Skip | null = null;
  /**
   * Set while the held text is exactly one open long-lived candidate (a private-key
   * block or a token run): appending text that cannot close it needs no re-scan,
   * which keeps many small pushes into a large held block linear.
   */
  private open: Pending | null = null;

  constructor(
    private readonly m: MaskerImpl,
    private readonly interactive: boolean,
  ) {}

  push(chunk: string): string {
    if (chunk.length === 0) return '';
    const open = this.open;
    if (open !== null && this.raw.length + chunk.length <= STREAM_HOLD_CAP && chunk.indexOf(ESC) === -1) {
      if (open.kind === 'block' ? !closesBlock(this.raw, chunk) : allRunChars(chunk, open.isRunChar!)) {
        this.raw += chunk;
        return '';
      }
    }
    this.open = null;
    const echo = this.interactive && chunk.length <= INTERACTIVE_CHUNK_MAX && chunk.indexOf('\n') === -1;
    return this.process(echo, false, chunk);
  }

  drain(): string {
    this.open = null;
    return this.process(true, false);
  }

  flush(): string {
    this.open = null;
    const out = this.process(false, true);
    this.raw = '';
    this.ctx = '';
    this.skip = null;
    return out;
  }

  /** `chunk`: pushed text not yet appended to the held text. */
  private process(strongOnly: boolean, final: boolean, chunk = ''): string {
    let out = '';
    if (this.skip !== null) {
      this.raw += chunk;
      chunk = '';
      out += this.consumeSkip(final);
      if (this.skip !== null) return out;
    }
    return out + this.emit(strongOnly, final, chunk);
  }

  private emit(strongOnly: boolean, final: boolean, chunk: string): string {
    const held = this.raw;
    if (held.length + chunk.length === 0) return '';
    const ctx = this.ctx;
    const base = ctx.length;
    // full = ctx + view, built as one flat string (one copy; the detectors read it character by
    // character, which is slower on a concatenation or a slice).
    let raw: string;
    let v: View;
    let full: string;
    if (held.indexOf(ESC) === -1 && chunk.indexOf(ESC) === -1) {
      // No escape sequence: the view is the raw text itself.
      full = base === 0 && held.length === 0 ? chunk : [ctx, held, chunk].join('');
      raw = base === 0 ? full : full.slice(base);
      v = { view: raw, segView: null, segRaw: NO_SEGMENTS, complete: raw.length };
    } else {
      raw = held + chunk;
      v = toView(raw, final);
      full = base === 0 ? v.view : [ctx, v.view].join('');
    }
    const ix = full.length >= FAST_MIN_LENGTH ? new TextIndex(full) : null;
    const spans = ix === null ? this.m.detect(full) : this.m.detectFast(full, ix);
    let cut = full.length;
    let pend: Pending | null = null;
    if (!final) {
      pend = ix === null ? this.m.pending(full, strongOnly) : this.m.pendingFast(full, strongOnly, ix);
      if (pend !== null) cut = Math.max(base, pend.start);
      for (let k = spans.length - 1; k >= 0; k--) {
        const s = spans[k]!;
        if (s.end <= cut) break;
        if (s.start < cut) {
          cut = Math.max(base, s.start);
          break;
        }
      }
      if (cut > base && isHighSurrogate(full.charCodeAt(cut - 1))) cut--;
    }
    const rawCut = final ? raw.length : rawIndex(v, cut - base);
    let out = this.m.render(raw, v, spans, base, cut);
    // full = ctx + view: its last CONTEXT_CHARS before the cut.
    this.ctx = full.slice(Math.max(0, cut - CONTEXT_CHARS), cut);
    this.raw = raw.slice(rawCut);
    if (!final && this.raw.length > STREAM_HOLD_CAP) out += this.overflow(pend, v, cut - base);
    else if (
      !final &&
      pend !== null &&
      pend.kind !== 'bounded' &&
      cut === Math.max(base, pend.start) &&
      (pend.kind === 'block' || pend.isRunChar !== undefined)
    ) {
      this.open = pend;
    }
    return out;
  }

  /** The held text is too long: mask all of it and swallow the rest of the candidate. */
  private overflow(pend: Pending | null, v: View, viewCut: number): string {
    const held = this.raw.slice(0, v.complete - rawIndex(v, viewCut));
    const heldView = v.view.slice(viewCut);
    this.raw = this.raw.slice(held.length);
    this.ctx = tail(this.ctx + heldView);
    if (pend?.kind === 'block') this.skip = { kind: 'block', tail: heldView.slice(-KEY_END_TAIL) };
    else if (pend?.kind === 'run' && pend.isRunChar) this.skip = { kind: 'run', isRunChar: pend.isRunChar };
    return FULL_MASK + escapesOf(held);
  }

  /** Swallows the rest of an overflowed candidate; emits only escape sequences found in it. */
  private consumeSkip(final: boolean): string {
    const skip = this.skip!;
    const raw = this.raw;
    const v = toView(raw, final);
    let endView = -1;
    if (skip.kind === 'block') {
      const text = skip.tail + v.view;
      const end = findKeyBlockEnd(text, 0);
      if (end !== -1) endView = Math.max(0, end - skip.tail.length);
      else skip.tail = text.slice(-KEY_END_TAIL);
    } else {
      for (let i = 0; i < v.view.length; i++) {
        if (!skip.isRunChar(v.view.charCodeAt(i))) {
          endView = i;
          break;
        }
      }
    }
    const consumedView = endView === -1 ? v.view.length : endView;
    const rawEnd = final && endView === -1 ? raw.length : rawIndex(v, consumedView);
    this.ctx = tail(this.ctx + v.view.slice(0, consumedView));
    this.raw = raw.slice(rawEnd);
    if (endView !== -1 || final) this.skip = null;
    return escapesOf(raw.slice(0, rawEnd));
  }
}

export function createMasker(config: MaskingConfigInput, hashKey: Uint8Array): Masker {
  return new MaskerImpl(MaskingConfigSchema.parse(config), hashKey);
}
