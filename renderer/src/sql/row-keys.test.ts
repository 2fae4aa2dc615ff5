import { describe, expect, it } from 'vitest';
import { type RowKeys, rowKeys } from './ResultGrid';

const range = (first: number, count: number) => Array.from({ length: count }, (_, i) => first + i);

describe('result grid row keys', () => {
  it('keeps the keys of rows still in view on a short scroll and gives the rows coming in the keys that left', () => {
    const a = rowKeys(undefined, 0, 10);
    expect(a.keys).toEqual(range(0, 10));
    const b = rowKeys(a, 3, 10);
    // Rows 3…9 keep their keys; rows 10…12 take the keys of rows 0…2.
    expect(b.keys).toEqual([3, 4, 5, 6, 7, 8, 9, 0, 1, 2]);
    const c = rowKeys(b, 1, 10);
    expect(c.keys.slice(2)).toEqual(b.keys.slice(0, 8));
  });

  it('reuses the keys in the same order after a jump, so the same elements show the new rows', () => {
    const a = rowKeys(rowKeys(undefined, 0, 10), 4, 10);
    expect(rowKeys(a, 5_000, 10).keys).toEqual(a.keys);
    // Mostly new rows (3 of 10 stay) count as a jump too.
    expect(rowKeys(a, 11, 10).keys).toEqual(a.keys);
  });

  it('always gives distinct keys, and no more than the rows rendered need, however the window moves', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let state: RowKeys | undefined;
    let first = 0;
    for (let step = 0; step < 2_000; step++) {
      const count = 20 + Math.floor(rnd() * 20);
      const move = rnd() < 0.2 ? Math.floor(rnd() * 10_000) - 5_000 : Math.floor(rnd() * 50) - 25;
      first = Math.max(0, first + move);
      state = rowKeys(state, first, count);
      expect(state.first).toBe(first);
      expect(state.keys).toHaveLength(count);
      expect(new Set(state.keys).size).toBe(count);
      expect(Math.max(...state.keys)).toBeLessThan(40);
    }
  });
});
