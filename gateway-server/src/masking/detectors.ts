/**
 * Value detectors: find secrets and personal data inside arbitrary strings.
 *
 * Every detector is a hand-written linear scanner (or a regex without nested
 * quantifiers anchored by a cheap `indexOf`), so no input can make it backtrack
 * catastrophically. Each one also knows how to answer the streaming question
 * "could the end of this text still turn into a match once more text arrives?"
 * (`pending`), which is what lets the stream masker hold back as little as possible.
 *
 * Character classes are ASCII; non-ASCII letters are treated as separators.
 */

export type DetectorId =
  | 'email'
  | 'card'
  | 'national-id'
  | 'jwt'
  | 'aws-access-key'
  | 'gcp-key'
  | 'github-token'
  | 'slack-token'
  | 'private-key'
  | 'bearer'
  | 'url-credentials';

export const DETECTOR_IDS: readonly DetectorId[] = [
  'email',
  'card',
  'national-id',
  'jwt',
  'aws-access-key',
  'gcp-key',
  'github-token',
  'slack-token',
  'private-key',
  'bearer',
  'url-credentials',
];

export function isDetectorId(value: string): value is DetectorId {
  return (DETECTOR_IDS as readonly string[]).includes(value);
}

/** Half-open range `[start, end)` in UTF-16 code units. */
export interface Match {
  start: number;
  end: number;
}

/** Counts gathered in one pass so that detectors can be skipped without scanning. */
export interface TextFeatures {
  length: number;
  digits: number;
  /** Upper bound of the digits in any chain of digit groups joined by single spaces/dashes. */
  chainDigits: number;
  upper: number;
  at: boolean;
  dash: boolean;
  colon: boolean;
  /** space or tab */
  space: boolean;
}

/**
 * Where the text may still change its masking once more text is appended.
 * - `bounded`: the candidate resolves within a few hundred characters at most;
 * - `block`: a private-key block, open until its END line;
 * - `run`: a token that lasts as long as characters satisfy `isRunChar`.
 */
export interface Pending {
  start: number;
  kind: 'bounded' | 'block' | 'run';
  isRunChar?: (code: number) => boolean;
}

export interface Detector {
  readonly id: DetectorId;
  readonly description: string;
  /** Texts shorter than this cannot contain a match and are not scanned. */
  readonly minLength: number;
  /** Cheap necessary condition on the text's features. */
  mayMatch(features: TextFeatures): boolean;
  /**
   * Appends matches to `out` (unsorted, possibly overlapping across sub-formats).
   * `features` must be textFeatures(text); callers have it already.
   */
  scan(text: string, out: Match[], features: TextFeatures): void;
  /** Sorted, non-overlapping matches. */
  find(text: string): Match[];
  /**
   * Streaming support: the earliest position from which the masking of `text` could
   * still change if more text were appended, or null when everything is decided.
   * With `strongOnly`, weak candidates (a bare word that could be an e-mail's local
   * part, the first letters of a known prefix) are ignored.
   */
  pending(text: string, strongOnly: boolean): Pending | null;
  /** Canonical form used before hashing, so that equal values hash equally. */
  normalize?: (value: string) => string;
}

// ---------------------------------------------------------------- characters

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isLower = (c: number): boolean => c >= 97 && c <= 122;
const isAlpha = (c: number): boolean => isUpper(c) || isLower(c);
const isAlnum = (c: number): boolean => isDigit(c) || isUpper(c) || isLower(c);
const isUpperDigit = (c: number): boolean => isDigit(c) || isUpper(c);
/** e-mail local part (dot-atom subset): letters, digits and . _ % + - */
const isLocalChar = (c: number): boolean =>
  isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
const isDomainChar = (c: number): boolean => isAlnum(c) || c === 45;
const isB64UrlChar = (c: number): boolean => isAlnum(c) || c === 45 || c === 95;
const isJwtChar = (c: number): boolean => isB64UrlChar(c) || c === 46;
const isAlnumUnderscore = (c: number): boolean => isAlnum(c) || c === 95;
const isAlnumDash = (c: number): boolean => isAlnum(c) || c === 45;
/** RFC 6750 b64token characters. */
const isBearerChar = (c: number): boolean =>
  isAlnum(c) || c === 45 || c === 46 || c === 95 || c === 126 || c === 43 || c === 47 || c === 61;

export function textFeatures(text: string, into?: TextFeatures): TextFeatures {
  let digits = 0;
  let chain = 0;
  let chainDigits = 0;
  let seps = 0;
  let upper = 0;
  let at = false;
  let dash = false;
  let colon = false;
  let space = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 57 && c >= 48) {
      digits++;
      if (++chain > chainDigits) chainDigits = chain;
      seps = 0;
    } else if (c === 32 || c === 45) {
      if (c === 45) dash = true;
      else space = true;
      if (++seps > 1) chain = 0;
    } else {
      chain = 0;
      seps = 0;
      if (c <= 90 && c >= 65) upper++;
      else if (c === 64) at = true;
      else if (c === 58) colon = true;
      else if (c === 9) space = true;
    }
  }
  const f = into ?? {
    length: 0,
    digits: 0,
    chainDigits: 0,
    upper: 0,
    at: false,
    dash: false,
    colon: false,
    space: false,
  };
  f.length = text.length;
  f.digits = digits;
  f.chainDigits = chainDigits;
  f.upper = upper;
  f.at = at;
  f.dash = dash;
  f.colon = colon;
  f.space = space;
  return f;
}

export function sortAndMerge(matches: Match[]): Match[] {
  if (matches.length < 2) return matches;
  matches.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Match[] = [matches[0]!];
  for (let i = 1; i < matches.length; i++) {
    const m = matches[i]!;
    const last = out[out.length - 1]!;
    if (m.start < last.end) {
      if (m.end > last.end) last.end = m.end;
    } else out.push(m);
  }
  return out;
}

type DetectorSpec = Omit<Detector, 'find'>;

function define(spec: DetectorSpec): Detector {
  return {
    ...spec,
    find(text: string): Match[] {
      if (text.length < spec.minLength) return [];
      const features = textFeatures(text);
      if (!spec.mayMatch(features)) return [];
      const out: Match[] = [];
      spec.scan(text, out, features);
      return sortAndMerge(out);
    },
  };
}

function minPending(a: Pending | null, b: Pending | null): Pending | null {
  if (a === null) return b;
  if (b === null) return a;
  return b.start < a.start ? b : a;
}

/** Smallest n - k (k = 1..prefix.length-1) such that text ends with prefix[0..k), or -1. */
function partialPrefixAt(text: string, prefix: string, caseInsensitive = false): number {
  const n = text.length;
  for (let k = Math.min(prefix.length - 1, n); k >= 1; k--) {
    let ok = true;
    for (let i = 0; i < k; i++) {
      let c = text.charCodeAt(n - k + i);
      if (caseInsensitive && isUpper(c)) c += 32;
      if (c !== prefix.charCodeAt(i)) {
        ok = false;
        break;
      }
    }
    if (ok) return n - k;
  }
  return -1;
}

/**
 * text.indexOf(head + rest, from), found by `rest`: a literal whose first character is frequent
 * (`e` of `eyJ` in prose, `A` of `AKIA` in base64 output) is found faster by a rarer part.
 */
function indexOfBy(text: string, head: string, rest: string, from: number): number {
  const k = head.length;
  for (let q = text.indexOf(rest, from + k); q !== -1; q = text.indexOf(rest, q + 1)) {
    if (text.startsWith(head, q - k)) return q - k;
  }
  return -1;
}

// -------------------------------------------------------------------- e-mail

const LOCAL_MAX = 64;
const DOMAIN_MAX = 255;

/** End of the longest domain with >= 2 labels and an alphabetic TLD, or -1. */
function emailDomainEnd(text: string, start: number, limit: number): number {
  let i = start;
  let labels = 0;
  let end = -1;
  while (i < limit) {
    const labelStart = i;
    let alpha = true;
    while (i < limit) {
      const c = text.charCodeAt(i);
      if (isAlpha(c)) i++;
      else if (isDigit(c) || c === 45) {
        alpha = false;
        i++;
      } else break;
    }
    if (i === labelStart) break;
    labels++;
    if (labels >= 2 && alpha && i - labelStart >= 2) end = i;
    if (i + 1 < limit && text.charCodeAt(i) === 46 && isDomainChar(text.charCodeAt(i + 1))) {
      i++;
      continue;
    }
    break;
  }
  return end;
}

function scanEmail(text: string, out: Match[]): void {
  const n = text.length;
  let from = 0;
  let lower = 0;
  for (;;) {
    const at = text.indexOf('@', from);
    if (at === -1) return;
    from = at + 1;
    let ls = at;
    const minLs = Math.max(lower, at - LOCAL_MAX);
    while (ls > minLs && isLocalChar(text.charCodeAt(ls - 1))) ls--;
    while (ls < at && text.charCodeAt(ls) === 46) ls++;
    if (ls === at) continue;
    const end = emailDomainEnd(text, at + 1, Math.min(n, at + 1 + DOMAIN_MAX));
    if (end === -1) continue;
    out.push({ start: ls, end });
    lower = end;
    from = end;
  }
}

function pendingEmail(text: string, strongOnly: boolean): Pending | null {
  const n = text.length;
  let start = n;
  // Only an '@' among the last DOMAIN_MAX characters can still be open.
  let at = -1;
  for (let k = text.indexOf('@', Math.max(0, n - DOMAIN_MAX)); k !== -1; k = text.indexOf('@', k + 1)) at = k;
  if (at !== -1) {
    let i = at + 1;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (isDomainChar(c) || c === 46) i++;
      else break;
    }
    if (i === n) {
      let ls = at;
      const min = Math.max(0, at - LOCAL_MAX);
      while (ls > min && isLocalChar(text.charCodeAt(ls - 1))) ls--;
      start = ls;
    }
  }
  if (!strongOnly) {
    // A trailing word could become the local part of an address once '@' arrives.
    let s = n;
    const min = Math.max(0, n - LOCAL_MAX);
    while (s > min && isLocalChar(text.charCodeAt(s - 1))) s--;
    if (s < start) start = s;
  }
  return start < n ? { start, kind: 'bounded' } : null;
}

export const emailDetector = define({
  id: 'email',
  description: 'e-mail address: local@domain.tld (at least one dot in the domain, alphabetic TLD)',
  minLength: 6,
  mayMatch: (f) => f.at,
  scan: scanEmail,
  pending: pendingEmail,
  normalize: (v) => v.toLowerCase(),
});

// --------------------------------------------------------- card and digit chains

const CARD_MIN = 13;
const CARD_MAX = 19;
/** Longest possible window: 19 digits in groups of >= 3 digits, so at most 5 separators. */
const CHAIN_HOLD = 32;
/**
 * An unbroken digit run longer than a card can hide one (`card || '0'`, `lpad(card, 24, '0')`).
 * Runs up to this length are searched for a Luhn-valid window and masked whole if one is found:
 * failing closed on long numbers is cheaper than leaking a card. Longer runs are not cards' carriers
 * in practice (and searching them is what would make everything look like a card).
 */
const LONG_RUN_MAX = 64;

/** Does the digit run text[a, b) contain a 13-19 digit window starting with 2-6 that passes Luhn? */
function runHidesCard(text: string, a: number, b: number): boolean {
  for (let start = a; start + CARD_MIN <= b; start++) {
    const first = text.charCodeAt(start);
    if (first < 50 || first > 54) continue;
    for (let len = CARD_MIN; len <= CARD_MAX && start + len <= b; len++) {
      let sum = 0;
      let double = false;
      for (let k = start + len - 1; k >= start; k--) {
        let d = text.charCodeAt(k) - 48;
        if (double) {
          d *= 2;
          if (d > 9) d -= 9;
        }
        sum += d;
        double = !double;
      }
      if (sum % 10 === 0) return true;
    }
  }
  return false;
}

let groupStarts: Int32Array = new Int32Array(64);
let groupEnds: Int32Array = new Int32Array(64);
let groupSeps: Int32Array = new Int32Array(64);

function luhn(text: string, a: number, b: number): boolean {
  let sum = 0;
  let double = false;
  for (let g = b; g >= a; g--) {
    for (let k = groupEnds[g]! - 1; k >= groupStarts[g]!; k--) {
      let d = text.charCodeAt(k) - 48;
      if (double) {
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
      double = !double;
    }
  }
  return sum % 10 === 0;
}

function scanCards(text: string, out: Match[]): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!isDigit(text.charCodeAt(i))) {
      i++;
      continue;
    }
    i = scanCardChain(text, out, i);
  }
}

/**
 * Parses the digit chain starting at `i` (a digit that does not continue an earlier chain) and
 * appends the cards found in it; returns the chain's end. Chains are independent of each other.
 */
function scanCardChain(text: string, out: Match[], i: number): number {
  const n = text.length;
  // A chain: digit groups joined by exactly one space or dash.
  const chainStart = i;
  let G = 0;
  let digits = 0;
  let j = i;
  for (;;) {
    if (G === groupStarts.length) {
      const grow = (a: Int32Array): Int32Array => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      groupStarts = grow(groupStarts);
      groupEnds = grow(groupEnds);
      groupSeps = grow(groupSeps);
    }
    groupStarts[G] = j;
    while (j < n && isDigit(text.charCodeAt(j))) j++;
    groupEnds[G] = j;
    digits += j - groupStarts[G]!;
    const s = text.charCodeAt(j);
    if ((s === 32 || s === 45) && isDigit(text.charCodeAt(j + 1))) {
      groupSeps[G++] = s;
      j++;
      continue;
    }
    G++;
    break;
  }
  const chainEnd = j;
  if (digits < CARD_MIN) return chainEnd;
  // Long unbroken runs: a card may be inside one, with no boundary to find it by.
  let hidden = false;
  for (let g = 0; g < G; g++) {
    const len = groupEnds[g]! - groupStarts[g]!;
    if (len > CARD_MAX && len <= LONG_RUN_MAX && runHidesCard(text, groupStarts[g]!, groupEnds[g]!)) {
      out.push({ start: groupStarts[g]!, end: groupEnds[g]! });
      hidden = true;
    }
  }
  if (hidden) return chainEnd;
  // Left: not glued to a word, not a phone number (+), not the fraction of a decimal.
  const l = text.charCodeAt(chainStart - 1);
  const leftOk = !isAlnum(l) && l !== 43 && !(l === 46 && isDigit(text.charCodeAt(chainStart - 2)));
  const r = text.charCodeAt(chainEnd);
  const rightOk = !isAlnum(r) && !(r === 46 && isDigit(text.charCodeAt(chainEnd + 1)));
  let lastEnd = -1;
  for (let a = 0; a < G; a++) {
    if (a === 0 && !leftOk) continue;
    const first = text.charCodeAt(groupStarts[a]!);
    if (first < 50 || first > 54) continue; // major industry identifier 2-6
    const lenA = groupEnds[a]! - groupStarts[a]!;
    let total = 0;
    for (let b = a; b < G; b++) {
      const lenB = groupEnds[b]! - groupStarts[b]!;
      total += lenB;
      if (total > CARD_MAX) break;
      if (b > a) {
        if (lenA < 4 || lenA > 6 || lenB < 3 || lenB > 6) break;
        if (groupSeps[b - 1] !== groupSeps[a]) break;
      }
      if (total < CARD_MIN) continue;
      if (b === G - 1 && !rightOk) continue;
      if (!luhn(text, a, b)) continue;
      const start = groupStarts[a]!;
      const end = groupEnds[b]!;
      if (lastEnd !== -1 && start < lastEnd) {
        const last = out[out.length - 1]!;
        if (end > last.end) last.end = end;
      } else out.push({ start, end });
      lastEnd = Math.max(lastEnd, end);
    }
  }
  return chainEnd;
}

/**
 * Start of the trailing digit chain whose fate is undecided (the chain may grow, or
 * its right boundary is not known yet), or -1. Long chains are held only for their
 * last CHAIN_HOLD characters, which covers every window that can still change.
 */
function pendingDigitChain(text: string): number {
  const n = text.length;
  if (n === 0) return -1;
  const last = text.charCodeAt(n - 1);
  let g = n;
  if (!isDigit(last)) {
    if ((last === 32 || last === 45 || last === 46) && isDigit(text.charCodeAt(n - 2))) g = n - 1;
    else return -1;
  }
  let hold = -1;
  for (;;) {
    let s = g;
    while (s > 0 && isDigit(text.charCodeAt(s - 1))) s--;
    if (g - s > LONG_RUN_MAX) break; // too long to be searched for a card (see LONG_RUN_MAX)
    hold = s;
    if (n - s >= CHAIN_HOLD) break;
    const c = text.charCodeAt(s - 1);
    if ((c === 32 || c === 45) && isDigit(text.charCodeAt(s - 2))) {
      g = s - 1;
      continue;
    }
    break;
  }
  return hold;
}

function pendingCard(text: string): Pending | null {
  const s = pendingDigitChain(text);
  return s === -1 ? null : { start: s, kind: 'bounded' };
}

const stripSeparators = (v: string): string => v.replace(/[\s-]/g, '').toUpperCase();

export const cardDetector = define({
  id: 'card',
  description:
    'payment card number: 13-19 digits starting with 2-6, optionally grouped by single spaces or dashes, Luhn-valid',
  minLength: CARD_MIN,
  mayMatch: (f) => f.chainDigits >= CARD_MIN,
  scan: scanCards,
  pending: pendingCard,
  normalize: stripSeparators,
});

// ---------------------------------------------------------------- national ids

const digitAt = (text: string, i: number): number => {
  const c = text.charCodeAt(i);
  return c >= 48 && c <= 57 ? c - 48 : -1;
};

/** Is text[s, s+11) a dashed SSN in an issued range, not part of a longer number? */
function ssnAt(text: string, s: number): boolean {
  const a0 = digitAt(text, s);
  const a1 = digitAt(text, s + 1);
  const a2 = digitAt(text, s + 2);
  const g0 = digitAt(text, s + 4);
  const g1 = digitAt(text, s + 5);
  const s0 = digitAt(text, s + 7);
  const s1 = digitAt(text, s + 8);
  const s2 = digitAt(text, s + 9);
  const s3 = digitAt(text, s + 10);
  if ((a0 | a1 | a2 | g0 | g1 | s0 | s1 | s2 | s3) < 0 || text.charCodeAt(s + 6) !== 45) return false;
  const l = text.charCodeAt(s - 1);
  if (isDigit(l) || (l === 45 && isDigit(text.charCodeAt(s - 2)))) return false;
  const r = text.charCodeAt(s + 11);
  if (isDigit(r) || (r === 45 && isDigit(text.charCodeAt(s + 12)))) return false;
  const area = a0 * 100 + a1 * 10 + a2;
  if (area === 0 || area === 666 || area >= 900) return false;
  return g0 + g1 > 0 && s0 + s1 + s2 + s3 > 0;
}

/** US SSN in the dashed form, excluding never-issued areas (000, 666, 900-999), group 00, serial 0000. */
function scanSsn(text: string, out: Match[]): void {
  const n = text.length;
  let from = 3;
  for (;;) {
    const d = text.indexOf('-', from);
    if (d === -1 || d + 8 > n) return;
    from = d + 1;
    if (ssnAt(text, d - 3)) {
      out.push({ start: d - 3, end: d + 8 });
      from = d + 8;
    }
  }
}

/**
 * UK National Insurance number (format rules of HMRC's NIM39110: no D F I Q U V as
 * first letter, no D F I O Q U V as second, prefixes BG GB KN NK NT TN ZZ unused,
 * suffix A-D). There is no checksum; upper case only.
 */
const NINO_RE =
  /(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])/g;

function scanNino(text: string, out: Match[]): void {
  NINO_RE.lastIndex = 0;
  for (let m = NINO_RE.exec(text); m !== null; m = NINO_RE.exec(text)) {
    out.push({ start: m.index, end: m.index + m[0].length });
  }
}

const isNinoFirst = (c: number): boolean => isUpper(c) && !'DFIQUV'.includes(String.fromCharCode(c));
const isNinoSecond = (c: number): boolean => isUpper(c) && !'DFIOQUV'.includes(String.fromCharCode(c));
const isNinoSuffix = (c: number): boolean => c >= 65 && c <= 68;
const isSpace = (c: number): boolean => c === 32;
const NINO_TOKENS: ReadonlyArray<readonly [(c: number) => boolean, boolean]> = [
  [isNinoFirst, false],
  [isNinoSecond, false],
  [isSpace, true],
  [isDigit, false],
  [isDigit, false],
  [isSpace, true],
  [isDigit, false],
  [isDigit, false],
  [isSpace, true],
  [isDigit, false],
  [isDigit, false],
  [isSpace, true],
  [isNinoSuffix, false],
];

/** Can text[s..] be a prefix of the token sequence (a complete match counts: its right boundary is open)? */
function tokensPrefixLive(
  text: string,
  s: number,
  tokens: ReadonlyArray<readonly [(c: number) => boolean, boolean]>,
): boolean {
  const T = tokens.length;
  const closure = (set: Set<number>, k: number): void => {
    let i = k;
    for (;;) {
      set.add(i);
      if (i < T && tokens[i]![1]) i++;
      else return;
    }
  };
  let states = new Set<number>();
  closure(states, 0);
  for (let j = s; j < text.length; j++) {
    const c = text.charCodeAt(j);
    const next = new Set<number>();
    for (const st of states) if (st < T && tokens[st]![0](c)) closure(next, st + 1);
    if (next.size === 0) return false;
    states = next;
  }
  return true;
}

function hasDigitFrom(text: string, s: number): boolean {
  for (let j = s; j < text.length; j++) if (isDigit(text.charCodeAt(j))) return true;
  return false;
}

function pendingNino(text: string, strongOnly: boolean): Pending | null {
  const n = text.length;
  for (let s = Math.max(0, n - 13); s < n; s++) {
    if (!isNinoFirst(text.charCodeAt(s)) || isAlnum(text.charCodeAt(s - 1))) continue;
    if (strongOnly && !hasDigitFrom(text, s)) continue;
    if (tokensPrefixLive(text, s, NINO_TOKENS)) return { start: s, kind: 'bounded' };
  }
  return null;
}

/** IBAN lengths by country (SWIFT IBAN registry). */
const IBAN_LENGTHS = new Map<number, number>();
for (const entry of (
  'AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 ' +
  'EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 HR21 HU28 IE22 IL23 IQ23 IS26 ' +
  'IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 ' +
  'NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 ' +
  'SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30'
).split(' ')) {
  IBAN_LENGTHS.set(entry.charCodeAt(0) * 256 + entry.charCodeAt(1), Number(entry.slice(2)));
}

function ibanChecksumOk(text: string, start: number, end: number): boolean {
  let r = 0;
  const add = (c: number): void => {
    if (isDigit(c)) r = (r * 10 + (c - 48)) % 97;
    else if (isUpper(c)) r = (r * 100 + (c - 55)) % 97;
  };
  for (let j = start + 4; j < end; j++) add(text.charCodeAt(j));
  for (let j = start; j < start + 4; j++) add(text.charCodeAt(j));
  return r === 1;
}

function scanIban(text: string, out: Match[]): void {
  const n = text.length;
  for (let i = 0; i + 15 <= n; i++) {
    const j = ibanAt(text, i);
    if (j === -1) continue;
    out.push({ start: i, end: j });
    i = j - 1;
  }
}

/** End of the IBAN starting at i, or -1. */
function ibanAt(text: string, i: number): number {
  const n = text.length;
  const c0 = text.charCodeAt(i);
  if (!isUpper(c0)) return -1;
  if (isAlnum(text.charCodeAt(i - 1))) return -1;
  const c1 = text.charCodeAt(i + 1);
  if (!isUpper(c1) || !isDigit(text.charCodeAt(i + 2)) || !isDigit(text.charCodeAt(i + 3))) return -1;
  const length = IBAN_LENGTHS.get(c0 * 256 + c1);
  if (length === undefined) return -1;
  let j = i + 4;
  let count = 4;
  while (j < n && count < length) {
    const c = text.charCodeAt(j);
    if (isUpperDigit(c)) {
      count++;
      j++;
    } else if (c === 32 && text.charCodeAt(j - 1) !== 32 && isUpperDigit(text.charCodeAt(j + 1))) j++;
    else break;
  }
  if (count < length || isAlnum(text.charCodeAt(j))) return -1;
  if (!ibanChecksumOk(text, i, j)) return -1;
  return j;
}

function ibanPrefixLive(text: string, s: number): boolean {
  const n = text.length;
  let count = 0;
  let length = 34;
  for (let j = s; j < n; j++) {
    const c = text.charCodeAt(j);
    if (count < 2) {
      if (!isUpper(c)) return false;
      count++;
      if (count === 2) {
        const l = IBAN_LENGTHS.get(text.charCodeAt(s) * 256 + c);
        if (l === undefined) return false;
        length = l;
      }
    } else if (count < 4) {
      if (!isDigit(c)) return false;
      count++;
    } else if (count >= length)
      return false; // complete and followed by a known character
    else if (isUpperDigit(c)) count++;
    else if (c !== 32 || text.charCodeAt(j - 1) === 32) return false;
  }
  return true;
}

function pendingIban(text: string, strongOnly: boolean): Pending | null {
  const n = text.length;
  for (let s = Math.max(0, n - 42); s < n; s++) {
    if (!isUpper(text.charCodeAt(s)) || isAlnum(text.charCodeAt(s - 1))) continue;
    if (strongOnly && !hasDigitFrom(text, s)) continue;
    if (ibanPrefixLive(text, s)) return { start: s, kind: 'bounded' };
  }
  return null;
}

export const nationalIdDetector = define({
  id: 'national-id',
  description:
    'US SSN (123-45-6789, invalid ranges excluded), UK National Insurance number (format rules), IBAN (country length + mod-97)',
  minLength: 9,
  mayMatch: (f) => (f.chainDigits >= 9 && f.dash) || (f.upper >= 2 && f.digits >= 6),
  scan(text, out, f) {
    if (f.chainDigits >= 9 && f.dash) scanSsn(text, out);
    if (f.upper >= 3) scanNino(text, out);
    if (f.upper >= 2 && f.length >= 15) scanIban(text, out);
  },
  pending(text, strongOnly) {
    const chain = pendingDigitChain(text);
    let p: Pending | null = chain === -1 ? null : { start: chain, kind: 'bounded' };
    p = minPending(p, pendingNino(text, strongOnly));
    return minPending(p, pendingIban(text, strongOnly));
  },
  normalize: stripSeparators,
});

// ----------------------------------------------------------------------- JWT

function scanJwt(text: string, out: Match[]): void {
  scanJwtRuns(text, out);
}

/**
 * Appends the JWTs of text; returns the start of the first `eyJ` whose token run reaches the end of
 * the text (what `pendingJwt` holds), or -1. The first two dots of each run are noted on the way.
 */
function scanJwtRuns(text: string, out: Match[]): number {
  const n = text.length;
  let from = 0;
  let open = -1;
  for (;;) {
    const p = indexOfBy(text, 'e', 'yJ', from);
    if (p === -1) return open;
    let j = p + 3;
    let d1 = -1;
    let d2 = -1;
    for (; j < n; j++) {
      const c = text.charCodeAt(j);
      if (c === 46) {
        if (d1 === -1) d1 = j;
        else if (d2 === -1) d2 = j;
      } else if (!isB64UrlChar(c)) break;
    }
    from = j;
    if (j === n && open === -1) open = p;
    if (d1 === -1 || d1 - p < 10) continue;
    if (d2 === -1 || d2 - d1 < 3) continue;
    let e = j;
    while (e > d2 && text.charCodeAt(e - 1) === 46) e--;
    out.push({ start: p, end: e });
  }
}

function pendingJwt(text: string, strongOnly: boolean): Pending | null {
  const n = text.length;
  let r = n;
  while (r > 0 && isJwtChar(text.charCodeAt(r - 1))) r--;
  if (r === n) return null;
  const p = text.indexOf('eyJ', r);
  if (p !== -1) return { start: p, kind: 'run', isRunChar: isJwtChar };
  if (strongOnly) return null;
  const q = partialPrefixAt(text, 'eyJ');
  return q === -1 ? null : { start: q, kind: 'bounded' };
}

/**
 * pendingJwt, given the first `eyJ` whose token run reaches the end of the text (scanJwtRuns): it is
 * the first `eyJ` of the trailing run. Without one, a partial `e`/`ey` at the end (token characters,
 * so the trailing run is not empty) is what is left.
 */
function jwtPendingFrom(text: string, open: number, strongOnly: boolean): Pending | null {
  if (open !== -1) return { start: open, kind: 'run', isRunChar: isJwtChar };
  if (strongOnly) return null;
  const q = partialPrefixAt(text, 'eyJ');
  return q === -1 ? null : { start: q, kind: 'bounded' };
}

export const jwtDetector = define({
  id: 'jwt',
  description: 'JSON Web Token: base64url header starting eyJ, payload and signature separated by dots',
  minLength: 16,
  mayMatch: (f) => f.upper >= 1,
  scan: scanJwt,
  pending: pendingJwt,
});

// ------------------------------------------------------- prefixed tokens (keys)

interface TokenSpec {
  prefix: string;
  isChar: (c: number) => boolean;
  min: number;
  /**
   * The fast path finds the prefix by the part of it from this offset on, two or three characters
   * (`KIA` for `AKIA`): a prefix that starts with a letter as common as `A` in base64 output is
   * found much faster by its rarer rest. Default 0: by its first two characters.
   */
  skip?: number;
}

interface CompiledToken extends TokenSpec {
  /** Index of this prefix's slot in TextIndex.tokenOpen. */
  slot: number;
}

/** Prefixes found together: every occurrence of `anchor` at `offset` in one of them is checked. */
interface AnchorGroup {
  anchor: string;
  offset: number;
  specs: CompiledToken[];
}

let tokenSlots = 0;
const tokenFast = new Map<DetectorId, FastDetector>();

function anchorGroups(specs: readonly CompiledToken[]): AnchorGroup[] {
  const groups: AnchorGroup[] = [];
  for (const spec of specs) {
    const offset = spec.skip ?? 0;
    const anchor = spec.prefix.slice(offset, offset === 0 ? 2 : undefined);
    let g = groups.find((x) => x.anchor === anchor && x.offset === offset);
    if (g === undefined) {
      g = { anchor, offset, specs: [] };
      groups.push(g);
    }
    g.specs.push(spec);
  }
  return groups;
}

/**
 * scanTokens for the fast path: all occurrences of every prefix are collected in one pass per anchor,
 * then each prefix is visited in the same order as scanTokens (the next occurrence at or after the
 * end of the previous token). Also notes, per prefix, the first visited occurrence whose token run
 * reaches the end of the text, which is what pendingTokens finds.
 */
function scanTokenRuns(
  specs: readonly CompiledToken[],
  groups: readonly AnchorGroup[],
  needs: readonly string[],
  text: string,
  out: Match[],
  open: Int32Array,
): void {
  for (const need of needs) if (text.indexOf(need) === -1) return;
  const n = text.length;
  let found: number[][] | null = null;
  for (const g of groups) {
    for (let q = text.indexOf(g.anchor, g.offset); q !== -1; q = text.indexOf(g.anchor, q + 1)) {
      const p = q - g.offset;
      for (const spec of g.specs) {
        if (!text.startsWith(spec.prefix, p)) continue;
        found ??= specs.map(() => []);
        found[specs.indexOf(spec)]!.push(p);
      }
    }
  }
  if (found === null) return;
  for (let k = 0; k < specs.length; k++) {
    const spec = specs[k]!;
    let from = 0;
    for (const p of found[k]!) {
      if (p < from) continue;
      const bodyStart = p + spec.prefix.length;
      let j = bodyStart;
      while (j < n && spec.isChar(text.charCodeAt(j))) j++;
      if (j - bodyStart >= spec.min) out.push({ start: p, end: j });
      if (j === n && open[spec.slot] === -1) open[spec.slot] = p;
      from = j;
    }
  }
}

/** pendingTokens from what scanTokenRuns noted. */
function pendingTokenRuns(
  specs: readonly CompiledToken[],
  text: string,
  strongOnly: boolean,
  open: Int32Array,
): Pending | null {
  let best: Pending | null = null;
  for (const spec of specs) {
    const p = open[spec.slot]!;
    if (p !== -1) best = minPending(best, { start: p, kind: 'run', isRunChar: spec.isChar });
    if (!strongOnly) {
      const q = partialPrefixAt(text, spec.prefix);
      if (q !== -1) best = minPending(best, { start: q, kind: 'bounded' });
    }
  }
  return best;
}

function commonStem(specs: readonly TokenSpec[]): string {
  let stem = specs[0]!.prefix;
  for (const s of specs) while (!s.prefix.startsWith(stem)) stem = stem.slice(0, -1);
  return stem;
}

function scanTokens(specs: readonly TokenSpec[], stem: string, text: string, out: Match[]): void {
  if (stem.length >= 2 && text.indexOf(stem) === -1) return;
  const n = text.length;
  for (const spec of specs) {
    let from = 0;
    for (;;) {
      const p = text.indexOf(spec.prefix, from);
      if (p === -1) break;
      const bodyStart = p + spec.prefix.length;
      let j = bodyStart;
      while (j < n && spec.isChar(text.charCodeAt(j))) j++;
      if (j - bodyStart >= spec.min) out.push({ start: p, end: j });
      from = j;
    }
  }
}

function pendingTokens(specs: readonly TokenSpec[], text: string, strongOnly: boolean): Pending | null {
  const n = text.length;
  let best: Pending | null = null;
  for (const spec of specs) {
    let from = 0;
    for (;;) {
      const p = text.indexOf(spec.prefix, from);
      if (p === -1) break;
      let j = p + spec.prefix.length;
      while (j < n && spec.isChar(text.charCodeAt(j))) j++;
      if (j === n) {
        best = minPending(best, { start: p, kind: 'run', isRunChar: spec.isChar });
        break;
      }
      from = j;
    }
    if (!strongOnly) {
      const q = partialPrefixAt(text, spec.prefix);
      if (q !== -1) best = minPending(best, { start: q, kind: 'bounded' });
    }
  }
  return best;
}

/** `needs`: strings every prefix contains (checked first: without them, no token). */
function tokenDetector(
  id: DetectorId,
  description: string,
  specs: readonly TokenSpec[],
  mayMatch: (f: TextFeatures) => boolean,
  needs: readonly string[],
): Detector {
  const minLength = Math.min(...specs.map((s) => s.prefix.length + s.min));
  const stem = commonStem(specs);
  const compiled: CompiledToken[] = specs.map((s) => {
    for (const need of needs) {
      if (!s.prefix.includes(need)) throw new Error(`token prefix ${s.prefix} does not contain ${need}`);
    }
    return { ...s, slot: tokenSlots++ };
  });
  const groups = anchorGroups(compiled);
  tokenFast.set(id, {
    scan: (text, out, ix) => scanTokenRuns(compiled, groups, needs, text, out, ix.tokenOpen),
    pending: (text, strongOnly, ix) => pendingTokenRuns(compiled, text, strongOnly, ix.tokenOpen),
  });
  return define({
    id,
    description,
    minLength,
    mayMatch,
    scan: (text, out) => scanTokens(specs, stem, text, out),
    pending: (text, strongOnly) => pendingTokens(specs, text, strongOnly),
  });
}

export const awsKeyDetector = tokenDetector(
  'aws-access-key',
  'AWS access key id: AKIA or ASIA followed by 16 upper-case letters or digits',
  [
    { prefix: 'AKIA', isChar: isUpperDigit, min: 16, skip: 2 },
    { prefix: 'ASIA', isChar: isUpperDigit, min: 16, skip: 2 },
  ],
  (f) => f.upper >= 4,
  [],
);

export const gcpKeyDetector = tokenDetector(
  'gcp-key',
  'Google API key: AIza followed by 35 base64url characters',
  [{ prefix: 'AIza', isChar: isB64UrlChar, min: 35, skip: 1 }],
  (f) => f.upper >= 2,
  [],
);

export const githubTokenDetector = tokenDetector(
  'github-token',
  'GitHub token: ghp_/gho_/ghu_/ghs_/ghr_ + 36 alphanumerics, or github_pat_ fine-grained token',
  [
    { prefix: 'ghp_', isChar: isAlnum, min: 36 },
    { prefix: 'gho_', isChar: isAlnum, min: 36 },
    { prefix: 'ghu_', isChar: isAlnum, min: 36 },
    { prefix: 'ghs_', isChar: isAlnum, min: 36 },
    { prefix: 'ghr_', isChar: isAlnum, min: 36 },
    { prefix: 'github_pat_', isChar: isAlnumUnderscore, min: 22 },
  ],
  () => true,
  ['_'],
);

export const slackTokenDetector = tokenDetector(
  'slack-token',
  'Slack token: xoxa-/xoxb-/xoxp-/xoxr-/xoxs- followed by at least 10 characters',
  ['xoxa-', 'xoxb-', 'xoxp-', 'xoxr-', 'xoxs-'].map((prefix) => ({ prefix, isChar: isAlnumDash, min: 10 })),
  (f) => f.dash,
  ['-', 'xox'],
);

// --------------------------------------------------------------- private keys

const KEY_BEGIN = '-----BEGIN ';
const KEY_END = '-----END ';
const KEY_LABEL_MAX = 100;

/**
 * Parses the armor line starting at p (after `-----BEGIN ` or `-----END `):
 * returns the index after the closing dashes, -1 when it is not an armor line,
 * -2 when the text ends before that is known.
 */
function armorLineEnd(text: string, labelStart: number): number {
  const n = text.length;
  let j = labelStart;
  while (j < n && j - labelStart <= KEY_LABEL_MAX) {
    const c = text.charCodeAt(j);
    if (isUpperDigit(c) || c === 32) j++;
    else break;
  }
  if (j - labelStart > KEY_LABEL_MAX) return -1;
  for (let k = 0; k < 5; k++) {
    if (j + k >= n) return -2;
    if (text.charCodeAt(j + k) !== 45) return -1;
  }
  return j + 5;
}

const PRIVATE_LABEL_RE = /PRIVATE KEY(?: BLOCK)?$/;

/** Calls visit(start, end, open) for every private-key block; open blocks extend to the end of text. */
function eachKeyBlock(text: string, visit: (start: number, end: number, open: boolean) => void): void {
  const n = text.length;
  let from = 0;
  for (;;) {
    const p = text.indexOf(KEY_BEGIN, from);
    if (p === -1) return;
    const labelStart = p + KEY_BEGIN.length;
    const h = armorLineEnd(text, labelStart);
    if (h === -2) {
      visit(p, n, true); // header still arriving: could be a private key
      return;
    }
    if (h === -1) {
      from = labelStart;
      continue;
    }
    if (!PRIVATE_LABEL_RE.test(text.slice(labelStart, h - 5))) {
      from = h;
      continue;
    }
    let search = h;
    for (;;) {
      const e = text.indexOf(KEY_END, search);
      if (e === -1) {
        visit(p, n, true);
        return;
      }
      const c = armorLineEnd(text, e + KEY_END.length);
      if (c === -2) {
        visit(p, n, true);
        return;
      }
      if (c === -1) {
        search = e + KEY_END.length;
        continue;
      }
      visit(p, c, false);
      from = c;
      break;
    }
  }
}

/** Index after the END armor line of an open block (searching from `from`), -1 if not there yet. */
export function findKeyBlockEnd(text: string, from: number): number {
  let search = from;
  for (;;) {
    const e = text.indexOf(KEY_END, search);
    if (e === -1) return -1;
    const c = armorLineEnd(text, e + KEY_END.length);
    if (c === -2) return -1;
    if (c === -1) {
      search = e + KEY_END.length;
      continue;
    }
    return c;
  }
}

export const privateKeyDetector = define({
  id: 'private-key',
  description:
    'PEM/OpenSSH/PGP private key block from -----BEGIN … PRIVATE KEY----- through its END line (to end of text if unterminated)',
  minLength: 27,
  mayMatch: (f) => f.dash,
  scan(text, out) {
    eachKeyBlock(text, (start, end) => {
      out.push({ start, end });
    });
  },
  pending(text, strongOnly) {
    let best: Pending | null = null;
    eachKeyBlock(text, (start, _end, open) => {
      if (open && best === null) best = { start, kind: 'block' };
    });
    if (best === null && !strongOnly) {
      const q = partialPrefixAt(text, KEY_BEGIN);
      if (q !== -1) best = { start: q, kind: 'bounded' };
    }
    return best;
  },
});

// --------------------------------------------------------- bearer credentials

const BEARER_WORDS = [
  ['Bearer', 'bearer'],
  ['BEARER', 'bEARER'],
] as const;

/** Calls visit(tokenStart, tokenEnd, openAt) for `Bearer <token>`; openAt >= 0 when undecided. */
function eachBearer(text: string, visit: (start: number, end: number) => void): number {
  const n = text.length;
  let open = -1;
  for (const [w1, w2] of BEARER_WORDS) {
    // Occurrences of the needle (earer, EARER) that follow a B or b, in order: the others are
    // skipped below anyway, and an occurrence cannot overlap another.
    let at1 = -2;
    let at2 = -2;
    let from = 0;
    for (;;) {
      if (at1 !== -1 && at1 < from - 1) at1 = text.indexOf(w1, Math.max(0, from - 1));
      if (at2 !== -1 && at2 < from - 1) at2 = text.indexOf(w2, Math.max(0, from - 1));
      const w = at1 === -1 ? at2 : at2 === -1 ? at1 : Math.min(at1, at2);
      if (w === -1) break;
      const p = w + 1;
      from = p + 5;
      const b = text.charCodeAt(p - 1);
      if ((b !== 66 && b !== 98) || isAlnum(text.charCodeAt(p - 2))) continue;
      let j = p + 5;
      while (j < n && j - p - 5 < 8 && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 9)) j++;
      if (j === n && j - p - 5 < 8) {
        if (open === -1 || p - 1 < open) open = p - 1;
        continue;
      }
      if (j === p + 5) continue;
      const ts = j;
      while (j < n && isBearerChar(text.charCodeAt(j))) j++;
      if (j === n && (open === -1 || p - 1 < open)) open = p - 1;
      if (j - ts >= 8) visit(ts, j);
      from = j;
    }
  }
  return open;
}

export const bearerDetector = define({
  id: 'bearer',
  description: 'HTTP bearer credential: the token after "Bearer " (the word itself is kept)',
  minLength: 15,
  mayMatch: (f) => f.space,
  scan(text, out) {
    if (text.indexOf('earer') === -1 && text.indexOf('EARER') === -1) return;
    eachBearer(text, (start, end) => {
      out.push({ start, end });
    });
  },
  pending(text, strongOnly) {
    return bearerPendingFrom(
      text,
      eachBearer(text, () => {}),
      strongOnly,
    );
  },
});

/** The bearer detector's pending, given eachBearer's result. */
function bearerPendingFrom(text: string, open: number, strongOnly: boolean): Pending | null {
  if (open !== -1) return { start: open, kind: 'run', isRunChar: isBearerChar };
  if (strongOnly) return null;
  const q = partialPrefixAt(text, 'bearer ', true);
  if (q !== -1 && !isAlnum(text.charCodeAt(q - 1))) return { start: q, kind: 'bounded' };
  return null;
}

// ------------------------------------------------------------ URL credentials

const URL_USER_MAX = 128;
const URL_PASSWORD_MAX = 256;
const isUrlUserChar = (c: number): boolean =>
  c > 32 && c !== 127 && c !== 58 && c !== 47 && c !== 64 && c !== 63 && c !== 35;
const isUrlPasswordChar = (c: number): boolean => c > 32 && c !== 127 && c !== 64 && c !== 47;

/** Password range of `scheme://user:password@host`; returns 'open' when undecided, null when none. */
function urlPassword(text: string, p: number): Match | 'open' | null {
  const n = text.length;
  let j = p + 3;
  const userLimit = p + 3 + URL_USER_MAX;
  while (j < n && j < userLimit && isUrlUserChar(text.charCodeAt(j))) j++;
  if (j >= n) return 'open';
  if (text.charCodeAt(j) !== 58) return null;
  const pw = j + 1;
  let k = pw;
  const pwLimit = pw + URL_PASSWORD_MAX;
  while (k < n && k < pwLimit && isUrlPasswordChar(text.charCodeAt(k))) k++;
  if (k >= n) return 'open';
  if (text.charCodeAt(k) !== 64 || k === pw) return null;
  return { start: pw, end: k };
}

function scanUrlCredentials(text: string, out: Match[]): void {
  let from = 0;
  for (;;) {
    const p = indexOfBy(text, ':', '//', from);
    if (p === -1) return;
    from = p + 3;
    const m = urlPassword(text, p);
    if (m !== null && m !== 'open') {
      out.push(m);
      from = m.end;
    }
  }
}

export const urlCredentialsDetector = define({
  id: 'url-credentials',
  description: 'password in a URL: scheme://user:password@host (only the password is masked)',
  minLength: 9,
  mayMatch: (f) => f.colon && f.at,
  scan: scanUrlCredentials,
  pending(text, strongOnly) {
    const n = text.length;
    let best: Pending | null = null;
    // The earliest open one among the last few hundred characters.
    const limit = Math.max(0, n - (URL_USER_MAX + URL_PASSWORD_MAX + 8));
    for (let p = text.indexOf('://', limit); p !== -1; p = text.indexOf('://', p + 1)) {
      if (urlPassword(text, p) === 'open') {
        best = { start: p, kind: 'bounded' };
        break;
      }
    }
    if (best === null && !strongOnly) {
      const q = partialPrefixAt(text, '://');
      if (q !== -1) best = { start: q, kind: 'bounded' };
    }
    return best;
  },
});

// ------------------------------------------------- fast path for long texts

/**
 * Texts of at least this length (terminal output, big cells) are scanned through a TextIndex and the
 * FAST_DETECTORS below, which find exactly what the detectors' `scan` finds behind the masker's gates
 * (minLength, mayMatch) and answer `pending` exactly alike, with less work per character:
 * - one sparse pass (every sixth character) finds the digit chains of six digits or more: cards,
 *   SSNs and NINOs are looked for in those chains only; a regular expression finds where an IBAN
 *   can start (two letters and two digits at a word start);
 * - everything anchored by a literal (`@`, `eyJ`, `AKIA`, `-----BEGIN `…) is found by native
 *   `indexOf`, by its rarer part (`yJ`, `IA`), after checking for characters it needs (no `_`, no
 *   `ghp_`; no `.`, no JWT), and each literal is searched for once: what a scan learns about the
 *   end of the text (an open token run, an open key block) is kept for `pending`;
 * - `pending` only looks at the end of the text.
 * The text should be flat (not a concatenation or a slice of another string): reading it character
 * by character is then about twice as fast.
 * The gates are not evaluated: a match implies them (a card implies a chain of 13 digits, `AKIA`
 * four upper-case letters…), except for an IBAN, whose gate (digits) is checked. Above every
 * detector's minLength.
 */
export const FAST_MIN_LENGTH = 256;

export interface FastDetector {
  /** Same matches as the detector's `scan` would append if the masker's gates let it run. */
  scan(text: string, out: Match[], ix: TextIndex): void;
  /** Same as the detector's `pending`; to be called after `scan` on the same index. */
  pending(text: string, strongOnly: boolean, ix: TextIndex): Pending | null;
}

/** Per-text facts shared by the fast detectors; see FAST_MIN_LENGTH. */
export class TextIndex {
  /** Maximal digit chains (as textFeatures counts them) with at least 6 digits, in order. */
  readonly chainStart: number[] = [];
  readonly chainEnd: number[] = [];
  readonly chainDigits: number[] = [];
  /** Largest chainDigits (0 when there is no chain of 6 digits or more). */
  maxChain = 0;
  /** The text has a digit. */
  private readonly digits: boolean;

  /** Left by the fast scans for their pending (-1: none). */
  jwtOpen = -1;
  keyOpen = -1;
  bearerOpen = -1;
  readonly tokenOpen: Int32Array;
  private dashAt = -2;

  constructor(readonly text: string) {
    this.tokenOpen = new Int32Array(tokenSlots).fill(-1);
    const n = text.length;
    // Text without a digit (base64 of zeros…) has neither chains nor IBANs: ten native searches
    // that fail are cheaper than the loop below.
    this.digits = hasDigit(text);
    if (!this.digits) return;
    // A chain of 6 digits or more spans 6 characters or more, each a digit or a separator between
    // two digits: one of them is at a position p = 5 (mod 6). (Reads stay within the text: an
    // out-of-bounds charCodeAt deoptimizes this loop.)
    let walked = 0;
    for (let p = 5; p < n; p += 6) {
      const c = text.charCodeAt(p);
      if (c <= 57 && c >= 48) {
        if (p >= walked) walked = this.walk(p);
      } else if ((c === 32 || c === 45) && p >= walked && p + 1 < n) {
        if (isDigit(text.charCodeAt(p - 1)) && isDigit(text.charCodeAt(p + 1))) walked = this.walk(p - 1);
      }
    }
  }

  /** Records the chain around the digit at q; returns its end. */
  private walk(q: number): number {
    const t = this.text;
    const n = t.length;
    // Right from the digit at q, then left from it: each character of the chain is read once.
    let digits = 1;
    let e = q + 1;
    while (e < n) {
      const c = t.charCodeAt(e);
      if (c <= 57 && c >= 48) {
        digits++;
        e++;
      } else if ((c === 32 || c === 45) && e + 1 < n && isDigit(t.charCodeAt(e + 1))) e++;
      else break;
    }
    let s = q;
    while (s > 0) {
      const c = t.charCodeAt(s - 1);
      if (c <= 57 && c >= 48) {
        digits++;
        s--;
      } else if ((c === 32 || c === 45) && s > 1 && isDigit(t.charCodeAt(s - 2))) {
        digits++;
        s -= 2;
      } else break;
    }
    if (digits >= 6) {
      this.chainStart.push(s);
      this.chainEnd.push(e);
      this.chainDigits.push(digits);
      if (digits > this.maxChain) this.maxChain = digits;
    }
    return e;
  }

  /**
   * Increasing positions i where text[i..i+4) is two upper-case letters and two digits at a word
   * start (not after a letter or digit): where scanIban can find an IBAN.
   */

  /**
   * Increasing positions i where text[i..i+4) is two upper-case letters and two digits at a word
   * start (not after a letter or digit): where scanIban can find an IBAN. (A regular expression
   * finds them faster than a loop over the characters.)
   */
  ibanStarts(): number[] {
    const starts: number[] = [];
    if (!this.digits) return starts;
    IBAN_START.lastIndex = 0;
    for (let m = IBAN_START.exec(this.text); m !== null; m = IBAN_START.exec(this.text)) starts.push(m.index);
    return starts;
  }

  get dash(): boolean {
    if (this.dashAt === -2) this.dashAt = this.text.indexOf('-');
    return this.dashAt !== -1;
  }

  /** textFeatures(text).digits >= 6 */
  digitsAtLeast6(): boolean {
    if (this.maxChain >= 6) return true;
    const t = this.text;
    let d = 0;
    for (let i = 0; i < t.length; i++) if (isDigit(t.charCodeAt(i)) && ++d >= 6) return true;
    return false;
  }
}

const DIGIT_CHARS = '0123456789'.split('');

function hasDigit(text: string): boolean {
  for (const d of DIGIT_CHARS) if (text.indexOf(d) !== -1) return true;
  return false;
}

const NINO_AT = new RegExp(NINO_RE.source, 'y');
const IBAN_START = /(?<![0-9A-Za-z])[A-Z][A-Z][0-9][0-9]/g;

function scanNationalIdFast(text: string, out: Match[], ix: TextIndex): void {
  const { chainStart, chainEnd, chainDigits } = ix;
  // SSN: 9 digits joined by dashes, so inside a chain of 9 digits or more (as scanSsn: dashes in
  // order, and none within 8 characters after a match).
  let from = 3;
  for (let k = 0; k < chainStart.length; k++) {
    if (chainDigits[k]! < 9) continue;
    const end = chainEnd[k]!;
    for (let d = Math.max(from, chainStart[k]!); d < end; d++) {
      if (text.charCodeAt(d) !== 45 || !ssnAt(text, d - 3)) continue;
      out.push({ start: d - 3, end: d + 8 });
      from = d + 8;
      d += 7;
    }
  }
  // NINO: its six digits are a chain of their own, after the two letters (and an optional space).
  for (let k = 0; k < chainStart.length; k++) {
    const c0 = chainStart[k]!;
    const s = c0 > 0 && text.charCodeAt(c0 - 1) === 32 ? c0 - 3 : c0 - 2;
    if (s < 0 || !isUpper(text.charCodeAt(s)) || !isUpper(text.charCodeAt(s + 1))) continue;
    NINO_AT.lastIndex = s;
    const m = NINO_AT.exec(text);
    if (m !== null) out.push({ start: s, end: s + m[0].length });
  }
  // IBAN: the detector's gate is not implied by an IBAN (it may have fewer than 6 digits).
  const starts = ix.ibanStarts();
  if (starts.length === 0 || !((ix.maxChain >= 9 && ix.dash) || ix.digitsAtLeast6())) return;
  const n = text.length;
  let next = 0;
  for (const i of starts) {
    if (i < next) continue;
    if (i + 15 > n) break;
    const j = ibanAt(text, i);
    if (j === -1) continue;
    out.push({ start: i, end: j });
    next = j;
  }
}

/** The first `eyJ` of the trailing run of token characters (what pendingJwt holds), or -1. */
function trailingJwtStart(text: string): number {
  const n = text.length;
  let r = n;
  const near = Math.max(0, n - 512);
  while (r > near && isJwtChar(text.charCodeAt(r - 1))) r--;
  if (r === near && r > 0) {
    // A long run (base64 without line breaks): look for `eyJ` at all before walking it back.
    if (indexOfBy(text, 'e', 'yJ', 0) === -1) return -1;
    while (r > 0 && isJwtChar(text.charCodeAt(r - 1))) r--;
  }
  return r === n ? -1 : indexOfBy(text, 'e', 'yJ', r);
}

function scanKeyBlocksFast(text: string, out: Match[], ix: TextIndex): void {
  if (text.indexOf(' ') === -1 || text.indexOf('BEGIN ') === -1) return; // parts of KEY_BEGIN
  eachKeyBlock(text, (start, end, open) => {
    out.push({ start, end });
    if (open && ix.keyOpen === -1) ix.keyOpen = start;
  });
}

function pendingKeyBlocksFast(text: string, strongOnly: boolean, ix: TextIndex): Pending | null {
  if (ix.keyOpen !== -1) return { start: ix.keyOpen, kind: 'block' };
  if (strongOnly) return null;
  const q = partialPrefixAt(text, KEY_BEGIN);
  return q === -1 ? null : { start: q, kind: 'bounded' };
}

function scanBearerFast(text: string, out: Match[], ix: TextIndex): void {
  if (text.indexOf(' ') === -1 && text.indexOf('\t') === -1) {
    // No token without a space or tab after the word: only the word itself at the very end is open.
    ix.bearerOpen = eachBearer(text.length > 7 ? text.slice(-7) : text, () => {});
    if (ix.bearerOpen !== -1) ix.bearerOpen += Math.max(0, text.length - 7);
    return;
  }
  ix.bearerOpen = eachBearer(text, (start, end) => {
    out.push({ start, end });
  });
}

function pendingBearerFast(text: string, strongOnly: boolean, ix: TextIndex): Pending | null {
  return bearerPendingFrom(text, ix.bearerOpen, strongOnly);
}

export const FAST_DETECTORS: Readonly<Record<DetectorId, FastDetector>> = {
  email: { scan: scanEmail, pending: pendingEmail },
  card: {
    scan(text, out, ix) {
      for (let k = 0; k < ix.chainStart.length; k++) {
        if (ix.chainDigits[k]! >= CARD_MIN) scanCardChain(text, out, ix.chainStart[k]!);
      }
    },
    pending: pendingCard,
  },
  'national-id': { scan: scanNationalIdFast, pending: nationalIdDetector.pending },
  jwt: {
    scan(text, out, ix) {
      // A JWT has two dots; without any, only a run still open at the end matters (pending).
      ix.jwtOpen = text.indexOf('.') !== -1 ? scanJwtRuns(text, out) : trailingJwtStart(text);
    },
    pending: (text, strongOnly, ix) => jwtPendingFrom(text, ix.jwtOpen, strongOnly),
  },
  'aws-access-key': tokenFast.get('aws-access-key')!,
  'gcp-key': tokenFast.get('gcp-key')!,
  'github-token': tokenFast.get('github-token')!,
  'slack-token': tokenFast.get('slack-token')!,
  'private-key': { scan: scanKeyBlocksFast, pending: pendingKeyBlocksFast },
  bearer: { scan: scanBearerFast, pending: pendingBearerFast },
  'url-credentials': {
    scan(text, out) {
      if (text.indexOf(':') !== -1) scanUrlCredentials(text, out);
    },
    pending: urlCredentialsDetector.pending,
  },
};

// ------------------------------------------------------------------ registry

export const DETECTORS: Readonly<Record<DetectorId, Detector>> = {
  email: emailDetector,
  card: cardDetector,
  'national-id': nationalIdDetector,
  jwt: jwtDetector,
  'aws-access-key': awsKeyDetector,
  'gcp-key': gcpKeyDetector,
  'github-token': githubTokenDetector,
  'slack-token': slackTokenDetector,
  'private-key': privateKeyDetector,
  bearer: bearerDetector,
  'url-credentials': urlCredentialsDetector,
};

export function getDetector(id: DetectorId): Detector {
  return DETECTORS[id];
}

if (Math.max(...Object.values(DETECTORS).map((d) => d.minLength)) > FAST_MIN_LENGTH) {
  throw new Error('FAST_MIN_LENGTH must not be below a detector minLength');
}
