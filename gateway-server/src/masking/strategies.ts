import { createHmac } from 'node:crypto';

/**
 * Masking strategies.
 * - `full`: a fixed marker; keeps no length or content information.
 * - `partial`: keeps the last 4 significant characters (never more than half of
 *   them), masks the others one for one, keeps spaces, dashes and line breaks, so
 *   `4111 1111 1111 1111` becomes `•••• •••• •••• 1111`.
 * - `hash`: `h:` + the first 16 hex digits of HMAC-SHA256(gateway key, value):
 *   stable for a given key (joins and GROUP BY still work), useless without the key.
 * - `null`: SQL NULL for a whole cell; inside text it behaves like `full`.
 */
export type MaskStrategy = 'full' | 'partial' | 'hash' | 'null';

export const MASK_STRATEGIES: readonly MaskStrategy[] = ['full', 'partial', 'hash', 'null'];

export const MASK_CHAR = '•';
export const FULL_MASK = '••••••••';
export const HASH_PREFIX = 'h:';
export const PARTIAL_KEEP = 4;
export const HASH_HEX_CHARS = 16;
export const MIN_HASH_KEY_BYTES = 16;

export type Hasher = (value: string) => string;

const isKeptSeparator = (c: number): boolean => c === 32 || c === 45 || c === 9 || c === 10 || c === 13;
const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

export function maskFull(): string {
  return FULL_MASK;
}

/** Keeps the last `keep` significant characters (at most half of them); see module comment. */
const NOT_PLAIN = /[ \t\n\r\-\uD800-\uDFFF]/;

export function maskPartial(value: string, keep: number = PARTIAL_KEEP): string {
  const n = value.length;
  if (!NOT_PLAIN.test(value)) {
    const kept = Math.min(keep, n >> 1);
    return MASK_CHAR.repeat(n - kept) + value.slice(n - kept);
  }
  let significant = 0;
  let plain = true;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (isKeptSeparator(c)) {
      plain = false;
      continue;
    }
    if (isHigh(c) && isLow(value.charCodeAt(i + 1))) {
      plain = false;
      i++;
    }
    significant++;
  }
  const kept = Math.min(keep, Math.floor(significant / 2));
  if (plain) return MASK_CHAR.repeat(n - kept) + value.slice(n - kept);
  const firstKept = significant - kept;
  let out = '';
  let run = 0;
  let k = 0;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (isKeptSeparator(c)) {
      if (run > 0) out += MASK_CHAR.repeat(run);
      run = 0;
      out += value[i];
      continue;
    }
    const width = isHigh(c) && isLow(value.charCodeAt(i + 1)) ? 2 : 1;
    if (k >= firstKept) {
      if (run > 0) out += MASK_CHAR.repeat(run);
      run = 0;
      out += value.slice(i, i + width);
    } else run++;
    k++;
    i += width - 1;
  }
  if (run > 0) out += MASK_CHAR.repeat(run);
  return out;
}

/** Keyed, stable hash: same value and key give the same output; different keys give unrelated outputs. */
export function createHasher(key: Uint8Array): Hasher {
  if (key.length < MIN_HASH_KEY_BYTES) {
    throw new Error(`masking hash key must be at least ${MIN_HASH_KEY_BYTES} bytes`);
  }
  const k = Buffer.from(key);
  return (value: string) =>
    HASH_PREFIX + createHmac('sha256', k).update(value, 'utf8').digest('hex').slice(0, HASH_HEX_CHARS);
}

/** Applies a strategy to a whole value. `null` yields null (SQL NULL). */
export function applyStrategy(strategy: MaskStrategy, value: string, hasher: Hasher): string | null {
  switch (strategy) {
    case 'full':
      return FULL_MASK;
    case 'partial':
      return maskPartial(value);
    case 'hash':
      return hasher(value);
    case 'null':
      return null;
  }
}
