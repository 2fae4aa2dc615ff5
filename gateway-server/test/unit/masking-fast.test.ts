// The fast path of the masker (long texts: TextIndex + FAST_DETECTORS, see detectors.ts) must find
// exactly what the detectors find and hold back exactly what they hold back; the stream masker must
// stay exact for secrets cut anywhere between two long chunks.
import { decodeBinaryOutput, encodeBinaryOutput } from '@sallyport/protocol';
import { describe, expect, it } from 'vitest';
import { createMasker, DETECTOR_IDS, DETECTORS, type Match } from '../../src/masking';
import { FAST_DETECTORS, FAST_MIN_LENGTH, sortAndMerge, TextIndex } from '../../src/masking/detectors';

const KEY = new Uint8Array(32).fill(7);
const masker = createMasker({}, KEY);

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

const UP = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Text dense in secrets, near misses and their fragments (prefixes, digit chains, separators). */
function nasty(rnd: () => number, size: number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rnd() * 10)).join('');
  const chars = (n: number, alphabet: string) =>
    Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
  const makers: Array<() => string> = [
    () => pick(['eyJ', 'ey', 'AKIA', 'ASIA', 'AIza', 'ghp_', 'github_pat_', 'xoxb-', '-----BEGIN ', '://']),
    () => pick(['Bearer', 'bearer', 'BEARER', 'bEARER', '@', 'GB82', 'AB', 'é', '\uD83D\uDE00', '\x1b[31m']),
    () => digits(1 + Math.floor(rnd() * 25)),
    () =>
      Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => digits(1 + Math.floor(rnd() * 5))).join(
        pick([' ', '-']),
      ),
    () => pick(['4111 1111 1111 1111', '5555555555554444', '4111-1111-1111-1111', '378282246310005']),
    () => pick(['123-45-6789', '1 123-45-6789', 'AB 12 34 56 C', 'AB123456C', 'QQ123456C', 'CE 12 34 56 D']),
    () => pick(['GB82 WEST 1234 5698 7654 32', 'DE89370400440532013000', 'NL91ABNA0417164300']),
    () => `${chars(2, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')}${digits(2)}${chars(Math.floor(rnd() * 30), UP)}`,
    () => `${pick(['AKIA', 'ASIA'])}${chars(Math.floor(rnd() * 24), UP)}`,
    () => `AIza${chars(30 + Math.floor(rnd() * 10), B64URL)}`,
    () => `${pick(['ghp_', 'gho_', 'ghs_'])}${chars(Math.floor(rnd() * 40), UP)}${pick(['', 'ghp_', '_'])}`,
    () => `${pick(['xoxa-', 'xoxb-'])}${chars(Math.floor(rnd() * 20), `${UP}-`)}`,
    () =>
      `eyJ${chars(Math.floor(rnd() * 20), B64URL)}${pick(['.', ''])}${chars(Math.floor(rnd() * 30), B64URL)}.${chars(9, B64URL)}`,
    () => `${pick(['alice', 'bob.smith', 'x_y+z'])}@${pick(['example.com', 'mail.co.uk', 'localhost', ''])}`,
    () =>
      `Authorization: ${pick(['Bearer', 'bearer', 'BEARER'])}${pick([' ', '\t', ''])}${chars(Math.floor(rnd() * 30), B64)}`,
    () =>
      `postgres://${pick(['app', ''])}${pick([':', ''])}${chars(Math.floor(rnd() * 12), B64URL)}${pick(['@', '/', ''])}db`,
    () =>
      `-----BEGIN ${pick(['RSA PRIVATE KEY', 'CERTIFICATE'])}-----\n${chars(40, B64)}\n${pick(['-----END RSA PRIVATE KEY-----', ''])}`,
    () => chars(1 + Math.floor(rnd() * 200), B64),
    () => chars(1 + Math.floor(rnd() * 60), 'AAAAAAAAKIS'),
    () => chars(1 + Math.floor(rnd() * 30), 'abcdefghij klmnop'),
  ];
  let s = '';
  while (s.length < size)
    s += pick(makers)() + pick(['', ' ', '-', '\n', '\r\n', ':', '/', '_', '.', '+', '\t', '  ']);
  return s;
}

describe('masker fast path (long texts)', () => {
  it('finds exactly what every detector finds, and holds back exactly the same', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const rnd = mulberry32(seed);
      const text = nasty(rnd, FAST_MIN_LENGTH + Math.floor(rnd() * 4000));
      const ix = new TextIndex(text);
      for (const id of DETECTOR_IDS) {
        const out: Match[] = [];
        FAST_DETECTORS[id].scan(text, out, ix);
        expect(sortAndMerge(out), `${id}, seed ${seed}`).toEqual(DETECTORS[id].find(text));
      }
      for (const strongOnly of [false, true]) {
        for (const id of DETECTOR_IDS) {
          expect(FAST_DETECTORS[id].pending(text, strongOnly, ix), `${id} pending, seed ${seed}`).toEqual(
            DETECTORS[id].pending(text, strongOnly),
          );
        }
      }
    }
  });

  it('holds back candidates open at the end of a long text like the detectors do', () => {
    const filler = 'x'.repeat(FAST_MIN_LENGTH);
    const ends = [
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIi',
      `${'A'.repeat(600)}eyJhbGciOiJIUzI1NiJ9`, // no dot anywhere: only the open run matters
      'AKIAIOSFODNN7EX',
      'AIzaSyD-9tSrke72',
      'ghp_wWPw5k4aXcaT4',
      'xoxb-2632415-1234',
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEow',
      '-----BEGIN RSA PRI',
      'Authorization: Bearer abc123',
      'Authorization: Bearer',
      `${'A'.repeat(600)}Bearer`, // no space anywhere
      'postgres://app:s3cr',
      'mail alice@exa',
      'card 4111 1111 11',
      'ssn 123-45-67',
      'iban GB82 WEST 12',
      'nino AB 12 3',
    ];
    for (const end of ends) {
      const text = filler + end;
      const ix = new TextIndex(text);
      for (const id of DETECTOR_IDS) FAST_DETECTORS[id].scan(text, [], ix);
      for (const strongOnly of [false, true]) {
        for (const id of DETECTOR_IDS) {
          expect(FAST_DETECTORS[id].pending(text, strongOnly, ix), `${id}: ${end}`).toEqual(
            DETECTORS[id].pending(text, strongOnly),
          );
        }
      }
    }
  });

  it('indexes every digit chain of 6 digits or more', () => {
    const rnd = mulberry32(5);
    for (let k = 0; k < 200; k++) {
      let text = '';
      while (text.length < 400)
        text += `${Math.floor(rnd() * 10)}${['', '', ' ', '-', 'a', '  ', '.'][Math.floor(rnd() * 7)]}`;
      const expected: Array<[number, number, number]> = [];
      for (const m of text.matchAll(/\d(?:[ -]?\d)*/g)) {
        const digits = m[0].replace(/\D/g, '').length;
        if (digits >= 6) expected.push([m.index, m.index + m[0].length, digits]);
      }
      const ix = new TextIndex(text);
      expect(ix.chainStart.map((s, i) => [s, ix.chainEnd[i], ix.chainDigits[i]])).toEqual(expected);
    }
  });

  it('a secret cut anywhere between two long chunks is masked exactly as in the whole text', () => {
    const secrets = [
      '4111 1111 1111 1111',
      'alice.smith@example.com',
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
      'AKIAIOSFODNN7EXAMPLE',
      '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',
      '123-45-6789',
      'GB82 WEST 1234 5698 7654 32',
      'AB 12 34 56 C',
      'Bearer abc123.def456-ghi',
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAvHc0vZ3j4c8Gq8p1X2l9mB0nqWx4c8Rk2QAbCdEfGhIjKlMn\n-----END RSA PRIVATE KEY-----',
    ];
    // Base64-like output around the secret: long chunks on both sides of every cut.
    const rnd = mulberry32(9);
    const noise = (n: number) =>
      Array.from({ length: n }, (_, i) => (i % 77 === 76 ? '\n' : B64[Math.floor(rnd() * 64)])).join('');
    for (const secret of secrets) {
      const before = `${noise(FAST_MIN_LENGTH * 2)}\nvalue: `;
      const whole = `${before}${secret} (end)\n${noise(FAST_MIN_LENGTH * 2)}\n$ `;
      const expected = masker.maskText(whole).text;
      expect(expected).not.toContain(secret);
      for (const interactive of [false, true]) {
        const s = masker.createStream({ interactive });
        for (let i = before.length - 2; i <= before.length + secret.length + 2; i++) {
          const out = s.push(whole.slice(0, i)) + s.push(whole.slice(i)) + s.flush();
          expect(out, `${secret} cut at ${i - before.length}`).toBe(expected);
        }
      }
    }
  });

  it('long chunks of random sizes give the same output as maskText of the whole', () => {
    const rnd = mulberry32(77);
    const text = nasty(rnd, 60_000);
    const expected = masker.maskText(text).text;
    for (const [min, max] of [
      [FAST_MIN_LENGTH, 4096],
      [1, 600],
    ] as const) {
      for (const interactive of [false, true]) {
        const s = masker.createStream({ interactive });
        let out = '';
        for (let i = 0; i < text.length; ) {
          const size = min + Math.floor(rnd() * (max - min + 1));
          out += s.push(text.slice(i, i + size));
          i += size;
        }
        out += s.flush();
        if (!interactive || min > 128) expect(out).toBe(expected);
      }
    }
  });
});

describe('binary output frames (protocol)', () => {
  it('carry the stream in their first byte and the bytes unchanged', () => {
    const data = Buffer.from([0, 1, 2, 255, 0x1b, 0x5b]);
    for (const stream of ['stdout', 'stderr'] as const) {
      const frame = encodeBinaryOutput(stream, data);
      expect(frame[0]).toBe(stream === 'stdout' ? 1 : 2);
      const back = decodeBinaryOutput(frame);
      expect(back?.stream).toBe(stream);
      expect(Buffer.from(back!.data)).toEqual(data);
    }
    expect(decodeBinaryOutput(new Uint8Array([3, 1]))).toBeNull();
    expect(decodeBinaryOutput(new Uint8Array([]))).toBeNull();
  });
});
