import { create } from 'zustand';

/**
 * Which screen the console shows. The path is kept in the address bar so a reload (the
 * gateway serves the console for client-side routes) comes back to the same screen.
 */
export type View = 'targets' | 'my-access' | 'inbox' | 'audit' | 'connecting';

const PATHS: Record<View, string> = {
  targets: '/',
  'my-access': '/access',
  inbox: '/inbox',
  audit: '/audit',
  connecting: '/connect',
};

export const pathOf = (view: View): string => PATHS[view];

export function viewOf(pathname: string): View {
  const found = (Object.entries(PATHS) as Array<[View, string]>).find(([, p]) => p === pathname);
  return found?.[0] ?? 'targets';
}

export interface NavState {
  view: View;
  go(view: View): void;
}

export const useNav = create<NavState>()((set) => ({
  view: viewOf(window.location.pathname),
  go(view) {
    if (window.location.pathname !== PATHS[view]) window.history.pushState(null, '', PATHS[view]);
    set({ view });
  },
}));

window.addEventListener('popstate', () => useNav.setState({ view: viewOf(window.location.pathname) }));

export const selectView = (s: NavState) => s.view;
