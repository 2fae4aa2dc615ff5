import { describe, expect, it } from 'vitest';
import { DEFAULT_ROLE_MAPPING, type RoleMapping, rolesFor } from '../../src/identity/roles';

describe('rolesFor', () => {
  it('maps the default groups to roles', () => {
    expect(rolesFor(['developers'], DEFAULT_ROLE_MAPPING)).toEqual(['developer']);
    expect(rolesFor(['approvers'], DEFAULT_ROLE_MAPPING)).toEqual(['approver']);
    expect(rolesFor(['admins'], DEFAULT_ROLE_MAPPING)).toEqual(['admin']);
  });

  it('returns every matching role once, in a stable order', () => {
    expect(rolesFor(['admins', 'developers', 'approvers', 'developers'], DEFAULT_ROLE_MAPPING)).toEqual([
      'developer',
      'approver',
      'admin',
    ]);
  });

  it('grants nothing for unknown, empty or differently cased groups', () => {
    expect(rolesFor([], DEFAULT_ROLE_MAPPING)).toEqual([]);
    expect(rolesFor(['guests', 'Admins', 'admins '], DEFAULT_ROLE_MAPPING)).toEqual([]);
  });

  it('does not let roles imply each other', () => {
    expect(rolesFor(['admins'], DEFAULT_ROLE_MAPPING)).not.toContain('approver');
    expect(rolesFor(['approvers'], DEFAULT_ROLE_MAPPING)).not.toContain('developer');
  });

  it('supports custom mappings with several groups per role and shared groups', () => {
    const mapping: RoleMapping = {
      admin: ['platform-admins'],
      approver: ['dba-leads', 'sre-leads'],
      developer: ['engineering', 'sre-leads'],
    };
    expect(rolesFor(['sre-leads'], mapping)).toEqual(['developer', 'approver']);
    expect(rolesFor(['dba-leads'], mapping)).toEqual(['approver']);
    expect(rolesFor(['platform-admins'], mapping)).toEqual(['admin']);
    expect(rolesFor(['admins'], mapping)).toEqual([]);
  });

  it('grants nothing when a role maps to no group', () => {
    expect(rolesFor(['admins'], { admin: [], approver: [], developer: [] })).toEqual([]);
  });
});
