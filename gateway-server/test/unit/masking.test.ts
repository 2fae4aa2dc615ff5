import { describe, expect, it } from 'vitest';
import {
  createHasher,
  createMasker,
  DETECTORS,
  type DetectorId,
  FULL_MASK,
  MaskingConfigSchema,
  maskPartial,
  STREAM_HOLD_CAP,
  type TextStreamMasker,
} from '../../src/masking';

const KEY = new Uint8Array(32).fill(7);
const OTHER_KEY = new Uint8Array(32).fill(9);

const masker = createMasker({}, KEY);

function found(id: DetectorId, text: string): string[] {
  return DETECTORS[id].find(text).map((m) => text.slice(m.start, m.end));
}

// ------------------------------------------------------------ sample secrets

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const PRIVATE_KEY = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEAvHc0vZ3j4c8Gq8p1X2l9mB0nqWx4c8Rk2QAbCdEfGhIjKlMn',
  'oPqRsTuVwXyZ0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP',
  'QRSTUVWXYZ+/0123456789==',
  '-----END RSA PRIVATE KEY-----',
].join('\r\n');
const AWS_KEY = 'AKIAIOSFODNN7EXAMPLE';
const GCP_KEY = 'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY';
const GITHUB_TOKEN = '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';
const SLACK_TOKEN = 'xoxb-2632415-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx';

// -------------------------------------------------------------- detectors

describe('detectors', () => {
  it('email: addresses with a dotted domain, not shell prompts or bare hosts', () => {
    expect(found('email', 'contact alice@example.com today')).toEqual(['alice@example.com']);
    expect(found('email', 'first.last+tag@mail.example.co.uk,')).toEqual([
      'first.last+tag@mail.example.co.uk',
    ]);
    expect(found('email', 'ALICE@EXAMPLE.COM')).toEqual(['ALICE@EXAMPLE.COM']);
    expect(found('email', 'git@github.com:org/repo.git')).toEqual(['git@github.com']);
    // A prompt `root@server` has no TLD dot: not an address.
    expect(found('email', 'root@server:~# ls -la')).toEqual([]);
    expect(found('email', 'user@localhost')).toEqual([]);
    expect(found('email', 'ssh admin@10.0.0.12')).toEqual([]);
    expect(found('email', 'a@b.c and @handle and x@')).toEqual([]);
  });

  it('card: Luhn-valid 13-19 digits, grouped or not', () => {
    for (const card of [
      '4111111111111111',
      '5555555555554444',
      '378282246310005',
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
      '3782 822463 10005',
      '6011000990139424',
    ]) {
      expect(found('card', `pay with ${card}.`)).toEqual([card]);
    }
    expect(found('card', '1,4111111111111111,2024-01-15')).toEqual(['4111111111111111']);
    expect(found('card', 'Date 2024-01-15 4111 1111 1111 1111 exp 12/27')).toEqual(['4111 1111 1111 1111']);
  });

  it('card: negatives (Luhn-invalid, dates, phones, timestamps, decimals, long ids, glued)', () => {
    for (const text of [
      '4111111111111112', // Luhn-invalid
      '4111 1111 1111 1112',
      '2024-01-15',
      '2024-01-15 10:23:45.123456',
      '20240115102345',
      '+1 555-123-4567',
      '+44 20 7946 0958',
      '(555) 123-4567 ext 1234',
      '+4111111111111111', // E.164-style phone, not a card
      '1718900000000', // epoch milliseconds (first digit 1)
      '1718900000000000',
      '0.4111111111111111', // float digits
      '4111111111111111.25',
      '11111111111111111111111111', // 26 digits, no window that starts 2-6 and passes Luhn
      'order4111111111111111',
      '4111111111111111x',
      '4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1',
    ]) {
      expect(found('card', text), text).toEqual([]);
    }
  });

  it('card: a card hidden inside a longer digit run masks the whole run (card || digits, lpad)', () => {
    // SQL can glue digits to a card: `card || '0'`, `lpad(card, 24, '0')`, `string_agg(card, '')`.
    // No boundary marks the card, so a run of 20-64 digits with a Luhn-valid window is masked whole.
    expect(found('card', '41111111111111111111111')).toEqual(['41111111111111111111111']);
    expect(found('card', 'x 000000004111111111111111 y')).toEqual(['000000004111111111111111']);
    expect(found('card', '55555555555544440')).toEqual(['55555555555544440']);
    // Beyond 64 digits a run is not searched (every long number would contain a valid window).
    expect(found('card', '1'.repeat(70))).toEqual([]);
  });

  it('national-id: US SSN with the never-issued ranges excluded', () => {
    expect(found('national-id', 'ssn: 123-45-6789;')).toEqual(['123-45-6789']);
    for (const text of ['000-12-3456', '666-12-3456', '900-12-3456', '123-00-4567', '123-45-0000']) {
      expect(found('national-id', text), text).toEqual([]);
    }
    expect(found('national-id', '1123-45-6789')).toEqual([]);
    expect(found('national-id', '555-123-4567')).toEqual([]);
    expect(found('national-id', '123-45-6789-1')).toEqual([]);
  });

  it('national-id: UK National Insurance number (format rules)', () => {
    expect(found('national-id', 'NI AB 12 34 56 C ok')).toEqual(['AB 12 34 56 C']);
    expect(found('national-id', 'NI AB123456C')).toEqual(['AB123456C']);
    for (const text of [
      'QQ123456C',
      'DA123456C',
      'BG123456A',
      'GB123456A',
      'AB123456E',
      'ab123456c',
      'XAB123456C',
    ]) {
      expect(found('national-id', text), text).toEqual([]);
    }
  });

  it('national-id: IBAN (registry length + mod-97)', () => {
    expect(found('national-id', 'iban GB82 WEST 1234 5698 7654 32 EUR')).toEqual([
      'GB82 WEST 1234 5698 7654 32',
    ]);
    expect(found('national-id', 'DE89370400440532013000')).toEqual(['DE89370400440532013000']);
    expect(found('national-id', 'NL91ABNA0417164300')).toEqual(['NL91ABNA0417164300']);
    expect(found('national-id', 'GB82 WEST 1234 5698 7654 33')).toEqual([]); // checksum
    expect(found('national-id', 'XX82WEST12345698765432')).toEqual([]); // unknown country
    expect(found('national-id', 'DE8937040044053201300')).toEqual([]); // wrong length
  });

  it('jwt: three base64url segments with an eyJ header', () => {
    expect(found('jwt', `Authorization=${JWT};`)).toEqual([JWT]);
    expect(found('jwt', `unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. done`)).toEqual([
      'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0',
    ]);
    expect(found('jwt', 'eyJhbGciOiJIUzI1NiJ9 alone')).toEqual([]);
    expect(found('jwt', 'eyJhbGciOiJIUzI1NiJ9.x')).toEqual([]);
    expect(found('jwt', 'heyJude.is.a.song')).toEqual([]);
  });

  it('cloud keys and tokens', () => {
    expect(found('aws-access-key', `key=${AWS_KEY}\n`)).toEqual([AWS_KEY]);
    expect(found('aws-access-key', 'ASIAY34FZKBOKMUTVV7A')).toEqual(['ASIAY34FZKBOKMUTVV7A']);
    expect(found('aws-access-key', 'AKIAIOSFODNN7EXAMP')).toEqual([]);
    expect(found('aws-access-key', 'akiaiosfodnn7example')).toEqual([]);
    expect(found('gcp-key', `"${GCP_KEY}"`)).toEqual([GCP_KEY]);
    expect(found('gcp-key', GCP_KEY.slice(0, -2))).toEqual([]);
    expect(found('github-token', `token ${GITHUB_TOKEN} x`)).toEqual([GITHUB_TOKEN]);
    const pat = `github_pat_11ABCDEFG0123456789abc_${'x'.repeat(59)}`;
    expect(found('github-token', pat)).toEqual([pat]);
    expect(found('github-token', 'ghp_short123')).toEqual([]);
    expect(found('slack-token', `SLACK=${SLACK_TOKEN}`)).toEqual([SLACK_TOKEN]);
    expect(found('slack-token', 'xoxq-1234567890-abc')).toEqual([]);
  });

  it('private key: BEGIN…END blocks; unterminated blocks run to the end; certificates are not keys', () => {
    const text = `before\n${PRIVATE_KEY}\nafter`;
    expect(found('private-key', text)).toEqual([PRIVATE_KEY]);
    const openssh =
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----';
    expect(found('private-key', openssh)).toEqual([openssh]);
    const truncated = 'x\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrY';
    expect(found('private-key', truncated)).toEqual([truncated.slice(2)]);
    expect(found('private-key', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----')).toEqual([]);
  });

  it('bearer and URL credentials mask only the secret part', () => {
    expect(found('bearer', 'Authorization: Bearer abc123.def456-ghi\r\n')).toEqual(['abc123.def456-ghi']);
    expect(found('bearer', 'the bearer of this letter')).toEqual([]);
    expect(found('url-credentials', 'postgres://app:s3cr3t!@db.internal:5432/app')).toEqual(['s3cr3t!']);
    expect(found('url-credentials', 'https://example.com:8443/path?a=b@c')).toEqual([]);
    expect(found('url-credentials', 'ssh://git@example.com/repo')).toEqual([]);
  });
});

// ------------------------------------------------------------- strategies

describe('strategies', () => {
  it('partial keeps the last 4 and the grouping', () => {
    expect(maskPartial('4111111111111111')).toBe('••••••••••••1111');
    expect(maskPartial('4111 1111 1111 1111')).toBe('•••• •••• •••• 1111');
    expect(maskPartial('alice@example.com')).toBe('•••••••••••••.com');
    expect(maskPartial('123-45-6789')).toBe('•••-••-6789');
    // Short values never keep more than half of their characters.
    expect(maskPartial('Bob')).toBe('••b');
    expect(maskPartial('x')).toBe('•');
  });

  it('hash is stable for a key and depends on the key', () => {
    const h1 = createHasher(KEY);
    const h2 = createHasher(OTHER_KEY);
    expect(h1('alice@example.com')).toMatch(/^h:[0-9a-f]{16}$/);
    expect(h1('alice@example.com')).toBe(createHasher(new Uint8Array(32).fill(7))('alice@example.com'));
    expect(h1('alice@example.com')).not.toBe(h2('alice@example.com'));
    expect(h1('alice@example.com')).not.toBe(h1('bob@example.com'));
    expect(() => createHasher(new Uint8Array(8))).toThrow(/16 bytes/);
  });

  it('full keeps no length; null gives SQL NULL', () => {
    const m = createMasker(
      {
        columns: [
          { pattern: 'a', strategy: 'full' },
          { pattern: 'b', strategy: 'null' },
        ],
      },
      KEY,
    );
    expect(m.maskCell('x', { name: 'a' }).value).toBe(FULL_MASK);
    expect(m.maskCell('x'.repeat(100), { name: 'a' }).value).toBe(FULL_MASK);
    expect(m.maskCell('secret', { name: 'b' })).toEqual({ value: null, masked: true, reasons: ['column:b'] });
  });

  it('detector strategies: hash normalises, null nulls whole-value matches only', () => {
    const hashing = createMasker({ detectorStrategy: 'hash' }, KEY);
    const a = hashing.maskCell('alice@example.com').value;
    expect(a).toMatch(/^h:[0-9a-f]{16}$/);
    expect(hashing.maskCell('ALICE@EXAMPLE.COM').value).toBe(a);
    expect(hashing.maskCell('4111 1111 1111 1111').value).toBe(hashing.maskCell('4111111111111111').value);
    const nulling = createMasker({ detectorStrategy: 'null' }, KEY);
    expect(nulling.maskCell('alice@example.com')).toEqual({
      value: null,
      masked: true,
      reasons: ['detector:email'],
    });
    expect(nulling.maskCell('mail alice@example.com now').value).toBe(`mail ${FULL_MASK} now`);
    expect(nulling.maskText('alice@example.com').text).toBe(FULL_MASK);
  });
});

// ------------------------------------------------------------ column rules

describe('column rules', () => {
  const m = createMasker(
    {
      columns: [
        { pattern: 'public.customers.email', strategy: 'hash' },
        { pattern: 'orders.card_number', strategy: 'partial' },
        { pattern: 'ssn', strategy: 'null' },
        { pattern: '*.secret_*', strategy: 'full' },
        { pattern: 'hr.*.salary', strategy: 'full' },
      ],
    },
    KEY,
  );

  it('matches schema.table.column, table.column and column alone', () => {
    const r1 = m.maskCell('carol', { schema: 'public', table: 'customers', name: 'email' });
    expect(r1.value).toMatch(/^h:/);
    expect(r1.reasons).toEqual(['column:public.customers.email']);
    expect(m.maskCell('carol', { schema: 'crm', table: 'customers', name: 'email' }).masked).toBe(false);
    expect(m.maskCell('12345678', { table: 'orders', name: 'card_number' }).value).toBe('••••5678');
    expect(m.maskCell('12345678', { table: 'invoices', name: 'card_number' }).masked).toBe(false);
    expect(m.maskCell('078-05-1120', { schema: 'x', table: 'y', name: 'SSN' })).toEqual({
      value: null,
      masked: true,
      reasons: ['column:ssn'],
    });
  });

  it('matches by name when the table is unknown (computed columns), wildcards, case-insensitively', () => {
    expect(m.maskCell('12345678', { name: 'card_number' }).reasons).toEqual(['column:orders.card_number']);
    expect(m.maskCell('carol', { name: 'email' }).reasons).toEqual(['column:public.customers.email']);
    expect(m.maskCell('tok', { table: 'apps', name: 'secret_token' }).value).toBe(FULL_MASK);
    expect(m.maskCell('tok', { table: 'apps', name: 'Secret_Key' }).value).toBe(FULL_MASK);
    expect(m.maskCell('tok', { table: 'apps', name: 'not_secret' }).masked).toBe(false);
    expect(m.maskCell('100', { schema: 'hr', table: 'people', name: 'salary' }).value).toBe(FULL_MASK);
    expect(m.maskCell('100', { schema: 'sales', table: 'people', name: 'salary' }).masked).toBe(false);
  });

  it('null stays null; unruled columns fall through to detectors', () => {
    expect(m.maskCell(null, { name: 'ssn' })).toEqual({ value: null, masked: false, reasons: [] });
    expect(m.maskCell('4111111111111111', { table: 'notes', name: 'body' })).toEqual({
      value: '••••••••••••1111',
      masked: true,
      reasons: ['detector:card'],
    });
  });

  it('a column object reused and mutated between rows is matched afresh', () => {
    const col = { table: 'orders', name: 'card_number' };
    expect(m.maskCell('12345678', col).masked).toBe(true);
    col.name = 'note';
    expect(m.maskCell('12345678', col).masked).toBe(false);
    col.name = 'card_number';
    expect(m.maskCell('12345678', col).masked).toBe(true);
  });

  it('rejects bad configuration', () => {
    expect(() => MaskingConfigSchema.parse({ detectors: ['email', 'nope'] })).toThrow(/unknown detector/);
    expect(() =>
      MaskingConfigSchema.parse({ columns: [{ pattern: 'a.b.c.d', strategy: 'full' }] }),
    ).toThrow();
    expect(MaskingConfigSchema.parse({}).detectors).toContain('private-key');
  });

  it('only enabled detectors run', () => {
    const onlyCards = createMasker({ detectors: ['card'] }, KEY);
    expect(onlyCards.maskCell('alice@example.com 4111111111111111').value).toBe(
      'alice@example.com ••••••••••••1111',
    );
  });
});

// ---------------------------------------------------------- derived values

describe('derived values', () => {
  it('an upper-cased e-mail in a computed column is still masked by the detector', () => {
    expect(masker.maskCell('ALICE@EXAMPLE.COM', { name: 'upper' })).toEqual({
      value: '•••••••••••••.COM',
      masked: true,
      reasons: ['detector:email'],
    });
  });

  it('row_to_json output: every value inside is masked in place', () => {
    const r = masker.maskCell('{"email":"a@b.co","card":"4111111111111111","name":"Ann"}', {
      name: 'row_to_json',
    });
    expect(r.value).toBe('{"email":"•••.co","card":"••••••••••••1111","name":"Ann"}');
    expect(r.reasons).toEqual(['detector:email', 'detector:card']);
  });

  it('maskText masks everything it finds and reports reasons', () => {
    const r = masker.maskText(`user alice@example.com paid 4111 1111 1111 1111 with ${AWS_KEY}`);
    expect(r.text).toBe('user •••••••••••••.com paid •••• •••• •••• 1111 with ••••••••••••••••MPLE');
    expect(r.reasons).toEqual(['detector:email', 'detector:card', 'detector:aws-access-key']);
    expect(masker.maskText('nothing to see')).toEqual({ text: 'nothing to see', masked: false, reasons: [] });
  });

  it('maskText answers a repeated text the same, and the text after it afresh', () => {
    const m = createMasker({}, KEY);
    const a = "select * from customers where email = 'bob@example.com'";
    const b = "select * from customers where id = 7 and email = 'eve@example.com'";
    const first = m.maskText(a);
    expect(m.maskText(a)).toEqual(first);
    expect(first.text).not.toContain('bob@');
    const other = m.maskText(b);
    expect(other.text).not.toContain('eve@');
    expect(other.text).toContain('id = 7');
    expect(m.maskText('plain')).toEqual({ text: 'plain', masked: false, reasons: [] });
    expect(m.maskText(a).text).toBe(first.text);
    // Shared results cannot be changed by one caller for the next.
    expect(() => (m.maskText(a).reasons as string[]).push('x')).toThrow();
  });
});

// ----------------------------------------------------------------- streams

/** CSI and OSC sequences of s, and whether s ends inside one. */
function escapeSequences(s: string): { seqs: string[]; cutInside: boolean } {
  const seqs: string[] = [];
  let i = s.indexOf('\x1b');
  while (i !== -1) {
    let j = i + 1;
    if (j >= s.length) return { seqs, cutInside: true };
    if (s[j] === '[') {
      j++;
      while (j < s.length && !(s.charCodeAt(j) >= 0x40 && s.charCodeAt(j) <= 0x7e)) j++;
    } else if (s[j] === ']') {
      j++;
      while (j < s.length && s[j] !== '\x07') j++;
    }
    if (j >= s.length) return { seqs, cutInside: true };
    seqs.push(s.slice(i, j + 1));
    i = s.indexOf('\x1b', j + 1);
  }
  return { seqs, cutInside: false };
}

function runStream(s: TextStreamMasker, chunks: readonly string[]): string {
  let out = '';
  for (const c of chunks) out += s.push(c);
  return out + s.flush();
}

const SECRETS: ReadonlyArray<readonly [string, string]> = [
  ['card', '4111 1111 1111 1111'],
  ['card (no spaces)', '5555555555554444'],
  ['email', 'alice.smith@example.com'],
  ['jwt', JWT],
  ['private key', PRIVATE_KEY],
  ['ssn', '123-45-6789'],
  ['iban', 'GB82 WEST 1234 5698 7654 32'],
  ['aws', AWS_KEY],
  ['github', GITHUB_TOKEN],
  ['url password', 'p4ssw0rd-x'],
];

/** The value that must never appear in clear (for URL credentials: the password). */
function wrap(name: string, secret: string): string {
  const before = 'Customer record:\r\n  value = ';
  const after = ' (end)\r\nroot@server:~# ';
  return name === 'url password'
    ? `${before}postgres://app:${secret}@db.internal/app${after}`
    : `${before}${secret}${after}`;
}

describe('stream masker', () => {
  for (const [name, secret] of SECRETS) {
    it(`${name}: split at every boundary, never emitted, surroundings intact`, () => {
      const whole = wrap(name, secret);
      const expected = masker.maskText(whole).text;
      expect(expected).not.toContain(secret);
      for (const interactive of [false, true]) {
        const s = masker.createStream({ interactive });
        for (let i = 0; i <= whole.length; i++) {
          const out = runStream(s, [whole.slice(0, i), whole.slice(i)]);
          expect(out, `split at ${i}`).toBe(expected);
        }
      }
    });

    it(`${name}: one character per push (keyboard-echo mode) never emits it`, () => {
      const whole = wrap(name, secret);
      const chars = [...whole];
      const exact = runStream(masker.createStream({ interactive: false }), chars);
      expect(exact).toBe(masker.maskText(whole).text);
      const echo = runStream(masker.createStream(), chars);
      expect(echo).not.toContain(secret);
      expect(echo.startsWith('Customer record:\r\n  value = ')).toBe(true);
      expect(echo.endsWith(' (end)\r\nroot@server:~# ')).toBe(true);
    });
  }

  it('a private key split into many chunks is masked as one block', () => {
    const whole = `$ cat id_rsa\r\n${PRIVATE_KEY}\r\n$ `;
    for (const size of [1, 2, 3, 5, 7, 16, 64]) {
      const chunks: string[] = [];
      for (let i = 0; i < whole.length; i += size) chunks.push(whole.slice(i, i + size));
      const out = runStream(masker.createStream({ interactive: false }), chunks);
      expect(out).toBe(`$ cat id_rsa\r\n${FULL_MASK}\r\n$ `);
    }
  });

  it('plain text with no candidates is emitted with zero hold-back', () => {
    const s = masker.createStream();
    const listing = 'total 8\r\ndrwxr-xr-x 2 root root 4096 Jan  1 .\r\nroot@server:~# ';
    expect(s.push(listing)).toBe(listing);
    for (const ch of 'ls -la /var/log') expect(s.push(ch)).toBe(ch);
    const prompt = '\x1b[1;32mroot@server\x1b[0m:\x1b[1;34m~\x1b[0m# ';
    expect(s.push(prompt)).toBe(prompt);
    expect(s.flush()).toBe('');
  });

  it('holds back only what could still become a secret', () => {
    const s = masker.createStream({ interactive: false });
    expect(s.push('card: 4111 1111')).toBe('card: ');
    expect(s.push(' 1111 1111\r\nnext ')).toBe('•••• •••• •••• 1111\r\nnext ');
    expect(s.push('mail bob')).toBe('mail ');
    expect(s.drain()).toBe('bob');
    expect(s.push('@exam')).toBe('');
    // 'bob' was already shown: the rest of the address is still masked.
    expect(s.push('ple.org\r\n')).toBe('••••••••.org\r\n');
    expect(s.flush()).toBe('');
  });

  it('never splits a surrogate pair', () => {
    const s = masker.createStream({ interactive: false });
    expect(s.push('smile \uD83D')).toBe('smile ');
    expect(s.push('\uDE00 ok\r\n')).toBe('\u{1F600} ok\r\n');
  });

  it('keyboard echo: digits are held until the number ends, letters are not', () => {
    const s = masker.createStream();
    expect(s.push('e')).toBe('e');
    expect(s.push('c')).toBe('c');
    expect(s.push('4')).toBe('');
    expect(s.push('2')).toBe('');
    expect(s.push(' ')).toBe(''); // '42 1111…' could still be a grouped card number
    expect(s.push('x')).toBe('42 x');
  });

  it('ANSI: colours are kept, values inside colours are masked, escapes are never split', () => {
    const whole =
      '\x1b[0;31m4111111111111111\x1b[0m \x1b]0;title\x07mail: \x1b[1mal\x1b[22mice@example.com\x1b[K\r\n\x1b[2J\x1b[H$ ';
    const expected = masker.maskText(whole).text;
    expect(expected).toBe(
      `\x1b[0;31m${'•'.repeat(12)}1111\x1b[0m \x1b]0;title\x07mail: \x1b[1m${'•'.repeat(13)}.com\x1b[22m\x1b[K\r\n\x1b[2J\x1b[H$ `,
    );
    for (const interactive of [false, true]) {
      const s = masker.createStream({ interactive });
      for (let i = 0; i <= whole.length; i++) {
        const a = s.push(whole.slice(0, i));
        // Whatever was emitted ends on a complete escape sequence.
        expect(escapeSequences(a).cutInside, `split at ${i}: ${JSON.stringify(a)}`).toBe(false);
        const out = a + s.push(whole.slice(i)) + s.flush();
        if (interactive) {
          // Echo-sized first chunk: the local part may already be out, the rest is masked.
          expect(out).not.toContain('4111111111111111');
          expect(out).not.toContain('example.com');
          expect(escapeSequences(out).seqs).toEqual(escapeSequences(whole).seqs);
        } else expect(out, `split at ${i}`).toBe(expected);
      }
    }
  });

  it('fails closed on an unterminated private key longer than the hold cap', () => {
    const body = `${'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo='.repeat(2)}\r\n`.repeat(
      Math.ceil(STREAM_HOLD_CAP / 70) + 20,
    );
    const s = masker.createStream({ interactive: false });
    let out = s.push('$ cat key\r\n-----BEGIN PRIVATE KEY-----\r\n');
    for (let i = 0; i < body.length; i += 4096) out += s.push(body.slice(i, i + 4096));
    expect(out).toBe(`$ cat key\r\n${FULL_MASK}`);
    out += s.push('-----END PRIVATE KEY-----\r\n$ ls\r\n');
    out += s.flush();
    expect(out).toBe(`$ cat key\r\n${FULL_MASK}\r\n$ ls\r\n`);
    expect(out).not.toContain('QUJD');
  });

  it('fails closed on an endless token run', () => {
    const s = masker.createStream({ interactive: false });
    let out = s.push('token eyJ');
    for (let i = 0; i < 40; i++) out += s.push('a'.repeat(1000));
    out += s.push('.bbbb.cccc done\r\n');
    out += s.flush();
    expect(out).toBe(`token ${FULL_MASK} done\r\n`);
  });

  it('random chunking of 100 KB of mixed output equals maskText of the whole', () => {
    const { text, secrets } = mixedText(100_000, 42);
    const expected = masker.maskText(text).text;
    for (const secret of secrets) expect(expected, secret).not.toContain(secret);
    const rnd = mulberry32(7);
    const chunked = (min: number, max: number): string[] => {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; ) {
        const size = min + Math.floor(rnd() * (max - min + 1));
        chunks.push(text.slice(i, i + size));
        i += size;
      }
      return chunks;
    };
    // Exact mode: any chunking.
    expect(runStream(masker.createStream({ interactive: false }), chunked(1, 3000))).toBe(expected);
    expect(runStream(masker.createStream({ interactive: false }), chunked(1, 8))).toBe(expected);
    // Terminal mode: identical for output-sized chunks…
    expect(runStream(masker.createStream(), chunked(129, 4096))).toBe(expected);
    // …and for echo-sized chunks it may show an e-mail's local part, never a secret.
    const echo = runStream(masker.createStream(), chunked(1, 16));
    for (const secret of secrets) expect(echo, secret).not.toContain(secret);
  });
});

// ------------------------------------------------------- mixed text corpus

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

function luhnComplete(prefix: string): string {
  for (let d = 0; d <= 9; d++) {
    const candidate = prefix + d;
    let sum = 0;
    for (let i = 0; i < candidate.length; i++) {
      let x = candidate.charCodeAt(candidate.length - 1 - i) - 48;
      if (i % 2 === 1) {
        x *= 2;
        if (x > 9) x -= 9;
      }
      sum += x;
    }
    if (sum % 10 === 0) return candidate;
  }
  throw new Error('unreachable');
}

function mixedText(size: number, seed: number): { text: string; secrets: string[] } {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const digits = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += String(Math.floor(rnd() * 10));
    return s;
  };
  const alnum = (n: number, alphabet: string): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    return s;
  };
  const UP = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const words = [
    'select',
    'from',
    'users',
    'where',
    'id',
    'total',
    'ok',
    'Done.',
    'error:',
    'the',
    'Alice',
    'Bob',
    '|',
  ];
  const secrets: string[] = [];
  const secret = (s: string): string => {
    secrets.push(s);
    return s;
  };
  const makers: Array<() => string> = [
    () => pick(words),
    () => pick(words),
    () => pick(words),
    () => digits(1 + Math.floor(rnd() * 6)),
    () => `2024-${digits(2)}-${digits(2)} ${digits(2)}:${digits(2)}:${digits(2)}`,
    () => `+1 555-${digits(3)}-${digits(4)}`,
    () =>
      secret(
        `${pick(['alice', 'bob.smith', 'x_y+z'])}${digits(2)}@${pick(['example.com', 'mail.co.uk', 'corp.io'])}`,
      ),
    () => 'root@server:~# ',
    () => {
      const card = luhnComplete(pick(['4', '51', '37', '6011']) + digits(pick([11, 12, 13, 14])));
      return secret(card);
    },
    () => {
      const c = luhnComplete(`4${digits(14)}`);
      return secret(`${c.slice(0, 4)} ${c.slice(4, 8)} ${c.slice(8, 12)} ${c.slice(12)}`);
    },
    () => `4${digits(15)}`, // usually Luhn-invalid: may or may not be masked
    () =>
      secret(`${pick(['123', '234', '345'])}-${pick(['12', '45', '67'])}-${pick(['6789', '1234', '4321'])}`),
    () => secret('GB82 WEST 1234 5698 7654 32'),
    () => secret(`AKIA${alnum(16, UP)}`),
    () => secret(`ghp_${alnum(36, UP)}`),
    () => secret(`eyJ${alnum(20, B64)}.${alnum(30, B64)}.${alnum(43, B64)}`),
    () => `Authorization: Bearer ${secret(alnum(24, B64))}`,
    () => `postgres://app:${secret(`pw${alnum(10, B64)}`)}@db.internal:5432/app`,
    () => `\x1b[3${Math.floor(rnd() * 8)}m${pick(words)}\x1b[0m`,
    () => `\x1b[1m${secret(luhnComplete(`4${digits(14)}`))}\x1b[0m`,
    () => '\x1b[2K\r',
    () => `\x1b]0;root@server: ~\x07`,
    () => '-----',
    () => `-----BEGIN EC PRIVATE KEY-----\n${secret(alnum(64, B64))}\n-----END EC PRIVATE KEY-----`,
    () => '-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----',
    () => `https://example.com:8443/${pick(words)}`,
  ];
  let text = '';
  let line = 0;
  while (text.length < size) {
    const token = pick(makers)();
    text += token;
    line += token.length;
    if (line > 100 || rnd() < 0.08) {
      text += '\r\n';
      line = 0;
    } else text += pick([' ', ' ', ' ', ', ', '\t', ' | ']);
  }
  return { text, secrets };
}

describe('mixed corpus sanity', () => {
  it('generator is deterministic', () => {
    expect(mixedText(5000, 1).text).toBe(mixedText(5000, 1).text);
  });
});
