export type Role = 'developer' | 'approver' | 'admin';

/** Group names (from the token's groups claim) that map to each role. */
export interface RoleMapping {
  admin: string[];
  approver: string[];
  developer: string[];
}

export const DEFAULT_ROLE_MAPPING: RoleMapping = {
  admin: ['admins'],
  approver: ['approvers'],
  developer: ['developers'],
};

const ROLE_ORDER: Role[] = ['developer', 'approver', 'admin'];

/**
 * Roles granted by a set of groups. Exact, case-sensitive group matches; each role at most once,
 * always in the order developer, approver, admin. Roles do not imply each other.
 */
export function rolesFor(groups: string[], mapping: RoleMapping): Role[] {
  const have = new Set(groups);
  return ROLE_ORDER.filter((role) => mapping[role].some((group) => have.has(group)));
}
