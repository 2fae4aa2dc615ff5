import { describe, expect, it } from 'vitest';
import { csvFilename, lineColOf, toCsv } from './csv';

const col = (name: string) => ({ name, type: 'text' });

describe('CSV export', () => {
  it('quotes per RFC 4180, keeps masked text as shown and writes NULL as empty', () => {
    const csv = toCsv(
      [col('name'), col('email'), col('note')],
      [
        ['Alice', '••••••••@example.com', null],
        ['O"Brien, Jr.', '•••', 'two\nlines'],
      ],
    );
    expect(csv).toBe(
      'name,email,note\r\nAlice,••••••••@example.com,\r\n"O""Brien, Jr.",•••,"two\nlines"\r\n',
    );
  });

  it('defuses cells a spreadsheet would run as formulas, not negative numbers', () => {
    const csv = toCsv([col('v')], [['=HYPERLINK("x")'], ['+1+1'], ['@SUM(A1)'], ['-5'], ['-x'], ['-.5']]);
    expect(csv.split('\r\n').slice(1, -1)).toEqual([
      `"'=HYPERLINK(""x"")"`,
      "'+1+1",
      "'@SUM(A1)",
      '-5',
      "'-x",
      '-.5',
    ]);
  });

  it('names the file after the target and the time', () => {
    expect(csvFilename('shop-db', new Date('2026-11-22T20:49:32.123Z'))).toBe('shop-db-20261122T204932.csv');
  });

  it('turns an error position into line and column', () => {
    expect(lineColOf('select id,\n  nme from customers', 14)).toEqual({ line: 2, column: 3 });
    expect(lineColOf('select 1', 1)).toEqual({ line: 1, column: 1 });
  });
});
