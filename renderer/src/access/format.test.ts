import type { PolicyExplanation } from '@sallyport/protocol';
import { describe, expect, it } from 'vitest';
import {
  approvalNeeded,
  approvalText,
  clampDuration,
  durationOptions,
  formatCountdown,
  formatDuration,
  levelOptions,
  parseApproval,
  prefillLevel,
  ruleFor,
} from './format';

const rule = (over: Partial<PolicyExplanation['rules'][number]>): PolicyExplanation['rules'][number] => ({
  rule: 'r',
  applies: true,
  why: 'applies',
  levels: ['read'],
  maxDuration: '2h',
  approval: 'auto',
  breakGlass: false,
  ...over,
});
const explanation = (rules: PolicyExplanation['rules']): PolicyExplanation => ({
  target: 't',
  user: 'alice',
  rules,
  withoutApproval: [],
  withApproval: [],
});

describe('access format helpers', () => {
  it('formats durations and countdowns', () => {
    expect(formatDuration(1800)).toBe('30m');
    expect(formatDuration(5400)).toBe('1h 30m');
    expect(formatDuration(90_061)).toBe('1d 1h');
    expect(formatCountdown(0)).toBe('expired');
    expect(formatCountdown(5_000)).toBe('0:05');
    expect(formatCountdown(29 * 60_000 + 59_500)).toBe('30:00');
    expect(formatCountdown(7_198_000)).toBe('1:59:58');
  });

  it('reads the approval text of policy explain', () => {
    expect(parseApproval('auto')).toEqual({ auto: true });
    const a = parseApproval('2 of user:bob, group:sre-leads');
    expect(a).toEqual({ auto: false, count: 2, approvers: { users: ['bob'], groups: ['sre-leads'] } });
    expect(approvalText(a)).toBe('2 approvals from bob or group sre-leads');
    expect(approvalText(parseApproval('1 of group:approvers'))).toBe('1 approval from group approvers');
    expect(approvalNeeded({ users: [], groups: ['approvers'] }, 1)).toBe('anyone in group approvers');
  });

  it('prefills the first applicable level and picks the least-friction rule per level', () => {
    const ex = explanation([
      rule({ rule: 'other', applies: false, levels: ['write'] }),
      rule({ rule: 'prod', levels: ['read', 'write'], approval: '1 of group:approvers', breakGlass: true }),
      rule({ rule: 'auto-read', levels: ['read'], approval: 'auto', maxDuration: '1h' }),
    ]);
    expect(prefillLevel(ex, 'postgres')).toBe('read');
    expect(prefillLevel(null, 'ssh')).toBe('shell');
    expect(prefillLevel(explanation([]), 'postgres')).toBe('read');
    expect(levelOptions(ex, 'postgres')).toEqual(['read', 'write']);
    expect(levelOptions(explanation([]), 'ssh')).toEqual(['shell', 'exec-only']);
    expect(ruleFor(ex, 'read')?.rule).toBe('auto-read');
    expect(ruleFor(ex, 'write')?.rule).toBe('prod');
    expect(ruleFor(ex, 'admin')).toBeUndefined();
  });

  it('offers durations up to the maximum', () => {
    expect(durationOptions('2h')).toEqual(['15m', '30m', '1h', '2h']);
    expect(durationOptions('45m')).toEqual(['15m', '30m', '45m']);
    expect(clampDuration('30m', '2h')).toBe('30m');
    expect(clampDuration('4h', '2h')).toBe('2h');
    expect(clampDuration('30m', '10m')).toBe('10m');
  });
});
