import type { Me, Role } from '@sallyport/protocol';
import { create } from 'zustand';
import { gateway, isUnauthenticated, messageOf, signOut } from '../api';

export type SessionStatus = 'loading' | 'signed-out' | 'signed-in' | 'error';

/** Why a sign-in came back without a session (`/?signin_error=<code>` from the gateway). */
const SIGN_IN_ERRORS: Record<string, string> = {
  expired: 'The sign-in took too long or was started in another window. Please try again.',
  state: 'The sign-in response did not match this browser’s request. Please try again.',
  denied: 'The identity provider did not grant access.',
  issuer: 'The sign-in response came from an unexpected identity provider.',
  provider: 'The identity provider reported an error.',
  provider_unavailable: 'The identity provider cannot be reached right now. Try again shortly.',
  not_configured: 'Web console sign-in is not configured on this gateway.',
  failed: 'The sign-in could not be completed. Please try again.',
};

export interface SessionState {
  status: SessionStatus;
  me: Me | null;
  /** A problem loading the session (gateway unreachable, …). */
  error: string | null;
  /** A problem reported by the sign-in redirect, or a notice such as "signed out". */
  notice: { kind: 'error' | 'info'; text: string } | null;
  load(): Promise<void>;
  signOut(): Promise<void>;
  /** Reads and removes `?signin_error=` from the address bar. */
  takeSignInError(search: string): void;
}

export const useSession = create<SessionState>()((set) => ({
  status: 'loading',
  me: null,
  error: null,
  notice: null,

  async load() {
    set({ status: 'loading', error: null });
    try {
      const me = await gateway.me();
      set({ status: 'signed-in', me });
    } catch (err) {
      if (isUnauthenticated(err)) set({ status: 'signed-out', me: null });
      else set({ status: 'error', me: null, error: messageOf(err) });
    }
  },

  async signOut() {
    try {
      await signOut();
      set({ status: 'signed-out', me: null, notice: { kind: 'info', text: 'You have signed out.' } });
    } catch (err) {
      set({ notice: { kind: 'error', text: `Sign-out failed: ${messageOf(err)}` } });
    }
  },

  takeSignInError(search) {
    const code = new URLSearchParams(search).get('signin_error');
    if (code === null) return;
    set({ notice: { kind: 'error', text: SIGN_IN_ERRORS[code] ?? SIGN_IN_ERRORS.failed! } });
  },
}));

// ---- selectors ----

export const selectStatus = (s: SessionState) => s.status;
export const selectMe = (s: SessionState) => s.me;
export const selectNotice = (s: SessionState) => s.notice;
export const selectError = (s: SessionState) => s.error;
export const selectDisplayName = (s: SessionState): string => s.me?.name ?? s.me?.username ?? '';
export const selectRoles = (s: SessionState): Role[] => s.me?.roles ?? [];
export const selectHasRole = (s: SessionState): boolean => (s.me?.roles.length ?? 0) > 0;

export function initialsOf(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? [parts[0]![0], parts[parts.length - 1]![0]] : [parts[0]?.[0]];
  return letters.filter(Boolean).join('').toUpperCase() || '?';
}
