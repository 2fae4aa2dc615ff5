import { z } from 'zod';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Parses `90s`, `15m`, `8h`, `2d`, `1h30m` into seconds. Returns undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!/^(\d+[smhdw])+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * (UNITS[m[2]!] ?? 0);
  return Number.isSafeInteger(total) ? total : undefined;
}

export function formatDuration(seconds: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(seconds));
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('') || '0s';
}

/** A duration in config: `8h`-style text or a number of seconds. */
export const DurationSchema = z.union([
  z.number().int().positive(),
  z.string().transform((v, ctx) => {
    const s = parseDuration(v);
    if (s === undefined || s <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 90s, 15m, 8h, 2d)` });
      return z.NEVER;
    }
    return s;
  }),
]);
