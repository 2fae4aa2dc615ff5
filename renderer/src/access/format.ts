// Pure helpers for the access screens: durations, countdowns, approvers, the policy answer.
// No DOM and no store here, so they are unit-tested under Node.
import type { AccessLevel, PolicyExplanation, TargetKind } from '@sallyport/protocol';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** `90s`, `15m`, `8h`, `2d`, `1h30m` → seconds (the gateway's grammar); undefined otherwise. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!/^(\d+[smhdw])+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * (UNITS[m[2]!] ?? 0);
  return total;
}

/** Seconds → `30m`, `2h`, `1h 30m`, `1d 4h` (two largest units). */
export function formatDuration(seconds: number): string {
  let rest = Math.max(0, Math.round(seconds));
  const parts: string[] = [];
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
  return parts.slice(0, 2).join(' ') || '0s';
}

/** Milliseconds left → `1:59:58`, `29:59`, `0:05`; `expired` at or below zero. */
export function formatCountdown(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return 'expired';
  const total = Math.ceil(ms / 1000);
  const d = Math.floor(total / 86_400);
  const h = Math.floor((total % 86_400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${h}:${pad(m)}:${pad(s)}`;
  if (h > 0) return `${h}:${pad(m)}:${pad(s)}`;
  return `${m}:${pad(s)}`;
}

/** `just now`, `4 min ago`, `3 h ago`, `2 d ago`. */
export function timeAgo(iso: string, now: number): string {
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return '';
  if (ms < 45_000) return 'just now';
  const min = Math.round(ms / 60_000);
  if (min < 60) return `${min} min ago`;
  const h = Math.round(min / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} d ago`;
}

/** `2026-11-03 14:05:09 UTC`: unambiguous, for tables and the ledger. */
export function formatTimestamp(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// ---- levels ----

export const LEVELS_BY_KIND: Record<TargetKind, AccessLevel[]> = {
  postgres: ['read', 'write', 'admin'],
  ssh: ['shell', 'exec-only'],
};

export const LEVEL_TEXT: Record<AccessLevel, string> = {
  read: 'Read only',
  write: 'Read and write',
  admin: 'Database admin',
  shell: 'Interactive shell',
  'exec-only': 'Single commands only',
};

/** How much a level can change: drives the colour of level badges in the inbox. */
export const LEVEL_RISK: Record<AccessLevel, 'low' | 'medium' | 'high'> = {
  read: 'low',
  'exec-only': 'medium',
  write: 'medium',
  shell: 'high',
  admin: 'high',
};

export const defaultLevel = (kind: TargetKind): AccessLevel => (kind === 'postgres' ? 'read' : 'shell');

// ---- approvers ----

export interface Approvers {
  users: string[];
  groups: string[];
}

/** `group approvers`, `bob`, `bob, dave or group sre-leads`. */
export function approverNames(a: Approvers): string {
  const names = [...a.users, ...a.groups.map((g) => `group ${g}`)];
  if (names.length <= 1) return names[0] ?? 'nobody';
  return `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

/** Who has to act on a pending request: `anyone in group approvers`, `2 of bob, dave or group sre`. */
export function approvalNeeded(a: Approvers, count: number): string {
  const names = approverNames(a);
  if (count > 1) return `${count} approvals from ${names}`;
  return a.users.length + a.groups.length === 1 && a.groups.length === 1 ? `anyone in ${names}` : names;
}

export type ApprovalRule = { auto: true } | { auto: false; count: number; approvers: Approvers };

/** Reads the explain answer's approval text: `auto`, or `2 of user:bob, group:sre-leads`. */
export function parseApproval(text: string): ApprovalRule {
  if (text === 'auto') return { auto: true };
  const m = /^(\d+) of (.*)$/.exec(text);
  const approvers: Approvers = { users: [], groups: [] };
  for (const item of (m?.[2] ?? text).split(',').map((s) => s.trim())) {
    if (item.startsWith('user:')) approvers.users.push(item.slice(5));
    else if (item.startsWith('group:')) approvers.groups.push(item.slice(6));
    else if (item) approvers.users.push(item);
  }
  return { auto: false, count: m ? Number(m[1]) : 1, approvers };
}

export function approvalText(rule: ApprovalRule): string {
  if (rule.auto) return 'Granted at once, no approval needed';
  const names = approverNames(rule.approvers);
  return rule.count > 1 ? `${rule.count} approvals from ${names}` : `1 approval from ${names}`;
}

// ---- the policy answer ----

export type ExplainedRule = PolicyExplanation['rules'][number];

const friction = (r: ExplainedRule): number => {
  const a = parseApproval(r.approval);
  return a.auto ? 0 : a.count;
};

/** The level to prefill: the first applicable rule's first level, else the kind's default. */
export function prefillLevel(ex: PolicyExplanation | null, kind: TargetKind): AccessLevel {
  const first = ex?.rules.find((r) => r.applies && r.levels.length > 0);
  return first?.levels[0] ?? defaultLevel(kind);
}

/** Levels the user may ask for: those of the applicable rules (kind-valid), else all of the kind's. */
export function levelOptions(ex: PolicyExplanation | null, kind: TargetKind): AccessLevel[] {
  const allowed = new Set(ex?.rules.filter((r) => r.applies).flatMap((r) => r.levels) ?? []);
  const valid = LEVELS_BY_KIND[kind];
  const options = valid.filter((l) => allowed.has(l));
  return options.length > 0 ? options : valid;
}

/** The rule the gateway will use for this level: the applicable one with the least friction. */
export function ruleFor(ex: PolicyExplanation | null, level: AccessLevel): ExplainedRule | undefined {
  const candidates = ex?.rules.filter((r) => r.applies && r.levels.includes(level)) ?? [];
  return [...candidates].sort((a, b) => friction(a) - friction(b))[0];
}

const PRESETS = ['15m', '30m', '1h', '2h', '4h', '8h', '12h', '1d', '2d', '7d'];

/** Duration choices up to the rule's maximum (which is always offered itself). */
export function durationOptions(max: string | undefined): string[] {
  const maxSeconds = max ? parseDuration(max) : undefined;
  if (maxSeconds === undefined) return PRESETS;
  const fit = PRESETS.filter((p) => (parseDuration(p) ?? 0) <= maxSeconds);
  if (!fit.some((p) => parseDuration(p) === maxSeconds)) fit.push(max!);
  return fit;
}

/** Keeps `wanted` if it fits under `max`, else the longest option that does. */
export function clampDuration(wanted: string, max: string | undefined): string {
  const options = durationOptions(max);
  if (options.includes(wanted)) return wanted;
  const w = parseDuration(wanted) ?? 0;
  const fitting = options.filter((o) => (parseDuration(o) ?? 0) <= w);
  return fitting[fitting.length - 1] ?? options[0] ?? wanted;
}

/** Labels that make a target risky to touch (env=prod and friends). */
export const isProdLabel = (key: string, value: string): boolean =>
  /^(env|environment|stage|tier)$/i.test(key) && /^(prod|production|live)$/i.test(value);
