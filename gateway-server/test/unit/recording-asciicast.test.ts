// The asciicast lines built from bytes (recording/asciicast.ts) must be exactly what
// JSON.stringify writes for the decoded text, for any bytes cut anywhere; the exec newline
// translation must match the old regex; a recording's events must replay to the same text.
import { StringDecoder } from 'node:string_decoder';
import { describe, expect, it } from 'vitest';
import {
  encodeEvent,
  encodeTextEvent,
  findEscape,
  Utf8Chunker,
  wordsOf,
} from '../../src/recording/asciicast';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Terminal-like bytes: printable runs, controls, quotes, backslashes, multi-byte characters, and junk. */
function bytes(rnd: () => number, size: number, junk: boolean): Buffer {
  const pieces = [
    'plain text ',
    'A'.repeat(40),
    '\r\n',
    '\n',
    '\x1b[31m',
    '"',
    '\\',
    '\t',
    '\x00\x01\x7f',
    'é',
    '€',
    '\u{1F600}',
    '日本',
  ];
  const out: Buffer[] = [];
  let n = 0;
  while (n < size) {
    const b =
      junk && rnd() < 0.05
        ? Buffer.from([0x80 + Math.floor(rnd() * 0x80)])
        : Buffer.from(pieces[Math.floor(rnd() * pieces.length)]!, 'utf8');
    out.push(b);
    n += b.length;
  }
  return Buffer.concat(out);
}

/** Cuts `buf` at random places into views of one shared buffer (odd offsets: unaligned). */
function cut(rnd: () => number, buf: Buffer): Buffer[] {
  const backing = Buffer.alloc(buf.length + 3);
  const off = Math.floor(rnd() * 4);
  buf.copy(backing, off);
  const view = backing.subarray(off, off + buf.length);
  const parts: Buffer[] = [];
  let i = 0;
  while (i < view.length) {
    const n = Math.min(view.length - i, 1 + Math.floor(rnd() * 300));
    parts.push(view.subarray(i, i + n));
    i += n;
  }
  return parts;
}

describe('asciicast lines from bytes', () => {
  it('findEscape finds the first byte JSON escapes, at any alignment', () => {
    const all = Buffer.alloc(300);
    for (let i = 0; i < all.length; i++) all[i] = (i + 0x20) & 0xff;
    const slow = (b: Uint8Array) => b.findIndex((x) => x < 0x20 || x === 0x22 || x === 0x5c);
    const first = (v: Uint8Array, from: number, to: number) => {
      const i = slow(v.subarray(from, to));
      return i === -1 ? to : from + i;
    };
    for (let start = 0; start < 256; start++) {
      const v = all.subarray(start);
      expect(findEscape(v, 0, v.length, wordsOf(v))).toBe(first(v, 0, v.length));
    }
    const rnd = mulberry32(3);
    for (let trial = 0; trial < 5000; trial++) {
      const b = Buffer.alloc(1 + Math.floor(rnd() * 200), 'x');
      for (let k = Math.floor(rnd() * 4); k > 0; k--)
        b[Math.floor(rnd() * b.length)] = [0x22, 0x5c, 0x0a, 0x00, 0x1f, 0x1b, 0xe2][trial % 7]!;
      const v = b.subarray(Math.floor(rnd() * Math.min(4, b.length)));
      const from = Math.floor(rnd() * (v.length + 1));
      const to = from + Math.floor(rnd() * (v.length - from + 1));
      expect(findEscape(v, from, to, wordsOf(v))).toBe(first(v, from, to));
      expect(findEscape(v, from, to)).toBe(first(v, from, to));
    }
  });

  it('writes what JSON.stringify writes, for valid UTF-8 cut anywhere', () => {
    const rnd = mulberry32(7);
    for (let trial = 0; trial < 300; trial++) {
      const data = bytes(rnd, 1 + Math.floor(rnd() * 4000), false);
      const chunker = new Utf8Chunker();
      const parts = [...cut(rnd, data).map((p) => chunker.push(p)), chunker.end()];
      const t = Math.round(rnd() * 1e6) / 1000;
      const line = encodeEvent(t, 'o', parts).toString('utf8');
      expect(line).toBe(`${JSON.stringify([t, 'o', data.toString('utf8')])}\n`);
    }
  });

  it('turns bytes that are not UTF-8 into U+FFFD, as a StringDecoder does', () => {
    const rnd = mulberry32(11);
    for (let trial = 0; trial < 300; trial++) {
      const data = bytes(rnd, 1 + Math.floor(rnd() * 2000), true);
      const chunks = cut(rnd, data);
      const decoder = new StringDecoder('utf8');
      const text = chunks.map((c) => decoder.write(c)).join('') + decoder.end();
      const chunker = new Utf8Chunker();
      const parts = [...chunks.map((c) => chunker.push(c)), chunker.end()];
      const line = encodeEvent(1.5, 'o', parts).toString('utf8');
      expect(line).toBe(`${JSON.stringify([1.5, 'o', text])}\n`);
    }
  });

  it('translates a bare \\n to \\r\\n across parts (exec output), like the old regex', () => {
    const rnd = mulberry32(5);
    for (let trial = 0; trial < 200; trial++) {
      const data = bytes(rnd, 1 + Math.floor(rnd() * 1500), false);
      const parts = cut(rnd, data);
      // Cut inside characters too: the chunker keeps them whole.
      const chunker = new Utf8Chunker();
      const valid = [...parts.map((p) => chunker.push(p)), chunker.end()];
      const prevs: number[] = [];
      let last = 0;
      for (const p of valid) {
        prevs.push(last);
        if (p.length > 0) last = p[p.length - 1]!;
      }
      const line = encodeEvent(0, 'o', valid, prevs).toString('utf8');
      const want = data.toString('utf8').replace(/(?<!\r)\n/g, '\r\n');
      expect(line).toBe(`${JSON.stringify([0, 'o', want])}\n`);
    }
  });

  it('encodes text events (input, resize) and big lines', () => {
    expect(encodeTextEvent(3.5, 'r', '100x30').toString()).toBe('[3.5,"r","100x30"]\n');
    expect(encodeTextEvent(0.001, 'i', 'ls "a\\b"\r').toString()).toBe(
      `${JSON.stringify([0.001, 'i', 'ls "a\\b"\r'])}\n`,
    );
    // Larger than the shared scratch, and escapes all the way.
    const big = Buffer.alloc(300 * 1024, 0x1b);
    const line = encodeEvent(2, 'o', [big]).toString();
    expect(line).toBe(`${JSON.stringify([2, 'o', big.toString()])}\n`);
    // The scratch is fine after a big line.
    expect(encodeTextEvent(1, 'o', 'ok').toString()).toBe('[1,"o","ok"]\n');
  });
});
