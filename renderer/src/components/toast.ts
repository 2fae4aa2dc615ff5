import { create } from 'zustand';

export interface Toast {
  id: number;
  tone: 'info' | 'success' | 'warning' | 'error';
  title: string;
  body?: string;
}

export interface ToastState {
  toasts: Toast[];
  push(t: Omit<Toast, 'id'>, ttlMs?: number): void;
  dismiss(id: number): void;
  clear(): void;
}

let nextId = 1;
const MAX_TOASTS = 4;

/** Short-lived messages in the corner: decisions, grants, revocations. */
export const useToasts = create<ToastState>()((set, get) => ({
  toasts: [],
  push(t, ttlMs = 7000) {
    const id = nextId++;
    set({ toasts: [...get().toasts, { ...t, id }].slice(-MAX_TOASTS) });
    setTimeout(() => get().dismiss(id), ttlMs);
  },
  dismiss: (id) => set({ toasts: get().toasts.filter((t) => t.id !== id) }),
  clear: () => set({ toasts: [] }),
}));

export const toast = (t: Omit<Toast, 'id'>, ttlMs?: number) => useToasts.getState().push(t, ttlMs);
export const selectToasts = (s: ToastState) => s.toasts;
