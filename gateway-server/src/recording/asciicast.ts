/**
 * asciicast v2 event lines built straight from the bytes of the terminal stream:
 * `[0.412,"o","…"]\n`, byte for byte what `JSON.stringify([0.412, 'o', text])`
 * writes for the same text, without decoding the bytes into a string and
 * encoding them back.
 *
 * Why: at bulk output rates the recording was the gateway's largest cost
 * (JSON.stringify of every chunk, a second UTF-8 decode, a newline regex, a
 * join and an encode in the writer). Here the bytes are scanned four at a time
 * for the few that JSON must escape (controls below 0x20, `"` and `\`); the runs
 * between them are copied as they are (UTF-8 is valid JSON text as is).
 *
 * The bytes handed to `add` must be valid UTF-8 (`Utf8Chunker` makes them so):
 * valid UTF-8 holds no lone surrogates, so nothing else needs escaping.
 *
 * Lines are built in one scratch buffer shared by every session: encoding is
 * synchronous, and the caller copies the line out (`RecordingWriter.writeBytes`)
 * before the next one starts.
 */
import { isUtf8 } from 'node:buffer';

export type CastCode = 'o' | 'i' | 'r' | 'm';

/** The escape JSON.stringify writes for each byte (undefined: the byte stays as it is). */
const ESCAPES: Array<string | undefined> = Array.from({ length: 256 }, (_, b) => {
  if (b === 0x22) return '\\"';
  if (b === 0x5c) return '\\\\';
  if (b >= 0x20) return undefined;
  const short: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
  return short[b] ?? `\\u00${b.toString(16).padStart(2, '0')}`;
});
const ESCAPE_BYTES = ESCAPES.map((e) => (e === undefined ? undefined : Buffer.from(e, 'latin1')));
/** The longest escape (`\u001b`): the most one input byte can become. */
const MAX_EXPANSION = 6;
/** A bare `\n` in exec output becomes `\r\n` (what the user's terminal showed): 4 escaped bytes. */
const CRLF_ESCAPED = Buffer.from('\\r\\n', 'latin1');
const LF = 0x0a;
const CR = 0x0d;

/** Scratch kept between lines; a line larger than this gets its own buffer, which is dropped after. */
const SCRATCH_KEEP = 1024 * 1024;
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

const needsEscape = (b: number) => b < 0x20 || b === 0x22 || b === 0x5c;

/**
 * A 32-bit view of `src` from its first 4-byte-aligned byte (`head`), for `findEscape`; null
 * when `src` is too short to be worth one.
 */
export function wordsOf(src: Uint8Array): { w32: Int32Array; head: number } | null {
  const head = (4 - (src.byteOffset & 3)) & 3;
  const words = (src.length - head) >> 2;
  return words >= 8 ? { w32: new Int32Array(src.buffer, src.byteOffset + head, words), head } : null;
}

/**
 * Index of the first byte in `src[from, to)` that JSON must escape, or `to`. Four bytes at a
 * time (SWAR) where `words` (see `wordsOf`) covers them: for a 32-bit word w,
 * `(w - 0x20202020) & ~w & 0x80808080` is non-zero iff a byte is below 0x20, and
 * `(x - 0x01010101) & ~x & 0x80808080` with x = w ^ 0x22222222 (or 0x5c5c5c5c) iff a byte is
 * `"` (or `\`). The word with a hit is then searched byte by byte.
 */
export function findEscape(
  src: Uint8Array,
  from: number,
  to: number,
  words: { w32: Int32Array; head: number } | null = null,
): number {
  let i = from;
  if (words !== null) {
    const { w32, head } = words;
    // Bytes up to the next word boundary, then whole words.
    const aligned = Math.min(to, i <= head ? head : head + ((i - head + 3) & ~3));
    for (; i < aligned; i++) if (needsEscape(src[i]!)) return i;
    let k = (i - head) >> 2;
    const end = Math.min(w32.length, (to - head) >> 2);
    for (; k < end; k++) {
      const w = w32[k]!;
      const q = w ^ 0x22222222;
      const b = w ^ 0x5c5c5c5c;
      if ((((w - 0x20202020) & ~w) | ((q - 0x01010101) & ~q) | ((b - 0x01010101) & ~b)) & 0x80808080) break;
    }
    if (k > (i - head) >> 2) i = head + (k << 2);
  }
  for (; i < to; i++) if (needsEscape(src[i]!)) return i;
  return to;
}

/** Runs shorter than this are copied byte by byte (a native copy costs more than it saves). */
const SHORT_RUN = 24;

/**
 * Builds one event line. Usage: `begin(seconds, code)`, any number of `add(bytes)`,
 * then `end()`, which returns the line (a view of the shared scratch, valid until
 * the next `begin`).
 */
class LineBuilder {
  private buf = scratch;
  private at = 0;

  begin(seconds: number, code: CastCode): void {
    this.buf = scratch;
    // `[<seconds>,"o","`: the number as JSON writes it (String() is the same for finite numbers).
    this.at = this.buf.write(`[${seconds},"${code}","`, 0, 'latin1');
  }

  private reserve(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.at + n + 1024));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
    if (bigger.length <= SCRATCH_KEEP) scratch = bigger;
  }

  /**
   * Appends `src` (valid UTF-8) to the event's string. `crlfPrev` ≥ 0 turns every `\n` not
   * preceded by `\r` into `\r\n`; it is the byte that came before `src` in its stream.
   */
  add(src: Uint8Array, crlfPrev = -1): void {
    const n = src.length;
    if (n === 0) return;
    this.reserve(n * MAX_EXPANSION);
    const dst = this.buf;
    let at = this.at;
    let run = 0;
    const words = wordsOf(src);
    let i = findEscape(src, 0, n, words);
    while (i < n) {
      if (i > run) at = copyRun(src, run, i, dst, at);
      const b = src[i]!;
      if (b === LF && crlfPrev >= 0 && (i > 0 ? src[i - 1] : crlfPrev) !== CR) {
        CRLF_ESCAPED.copy(dst, at);
        at += 4;
      } else {
        const e = ESCAPE_BYTES[b]!;
        for (let k = 0; k < e.length; k++) dst[at++] = e[k]!;
      }
      run = i + 1;
      i = findEscape(src, run, n, words);
    }
    if (n > run) at = copyRun(src, run, n, dst, at);
    this.at = at;
  }

  end(): Buffer {
    this.reserve(3);
    const buf = this.buf;
    buf[this.at++] = 0x22; // "
    buf[this.at++] = 0x5d; // ]
    buf[this.at++] = LF;
    return buf.subarray(0, this.at);
  }
}

function copyRun(src: Uint8Array, from: number, to: number, dst: Buffer, at: number): number {
  if (to - from < SHORT_RUN) {
    for (let k = from; k < to; k++) dst[at++] = src[k]!;
    return at;
  }
  dst.set(from === 0 && to === src.length ? src : src.subarray(from, to), at);
  return at + (to - from);
}

const builder = new LineBuilder();

/** One event line for `parts` (valid UTF-8, see `Utf8Chunker`), in the order given. */
export function encodeEvent(
  seconds: number,
  code: CastCode,
  parts: readonly Uint8Array[],
  /** Per part: the byte before it in its stream, for the exec `\n` → `\r\n` translation; absent: none. */
  crlfPrev?: readonly number[],
): Buffer {
  builder.begin(seconds, code);
  for (let k = 0; k < parts.length; k++) builder.add(parts[k]!, crlfPrev ? crlfPrev[k]! : -1);
  return builder.end();
}

/** An event line for a string (resizes, input text): the same bytes as `JSON.stringify([t, code, text])`. */
export function encodeTextEvent(seconds: number, code: CastCode, text: string): Buffer {
  return encodeEvent(seconds, code, [Buffer.from(text, 'utf8')]);
}

const EMPTY = Buffer.alloc(0);

/**
 * Cuts a byte stream into pieces of valid UTF-8: a character split across chunks is kept
 * until its end arrives, and bytes that are not UTF-8 become U+FFFD (as a StringDecoder would
 * turn them). Valid chunks — all of them, when the masking filter is in front — pass through
 * without a copy.
 */
export class Utf8Chunker {
  private carry: Buffer = EMPTY;

  push(data: Buffer): Buffer {
    let buf = data;
    if (this.carry.length > 0) {
      buf = Buffer.concat([this.carry, data]);
      this.carry = EMPTY;
    }
    const cut = completeLength(buf);
    if (cut < buf.length) {
      this.carry = Buffer.from(buf.subarray(cut));
      buf = buf.subarray(0, cut);
    }
    return isUtf8(buf) ? buf : Buffer.from(buf.toString('utf8'), 'utf8');
  }

  /** The end of the stream: an unfinished character becomes U+FFFD. */
  end(): Buffer {
    const rest = this.carry;
    this.carry = EMPTY;
    return rest.length === 0 ? EMPTY : Buffer.from(rest.toString('utf8'), 'utf8');
  }
}

/**
 * Length of `buf` without a trailing incomplete UTF-8 sequence (a lead byte whose
 * continuation bytes have not all arrived).
 */
function completeLength(buf: Uint8Array): number {
  const n = buf.length;
  if (n === 0 || buf[n - 1]! < 0x80) return n;
  // Back to the last byte that is not a continuation byte (10xxxxxx), at most 3 back.
  for (let i = n - 1; i >= 0 && i >= n - 4; i--) {
    const b = buf[i]!;
    if ((b & 0xc0) === 0x80) continue;
    const need = b >= 0xf5 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 1;
    return n - i < need ? i : n;
  }
  return n;
}
