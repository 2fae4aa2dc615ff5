/**
 * What only the desktop app can do, behind one typed bridge. Inside Electron the
 * preload script exposes an implementation as `window.sallyport`; in a plain
 * browser the web implementation below says plainly what is missing. The
 * renderer never imports Electron or Node.
 */
export interface Capability {
  available: boolean;
  /** Shown to the user when the capability is missing. */
  unavailableReason?: string;
}

export interface DesktopNotification {
  title: string;
  body: string;
}

export interface Platform {
  kind: 'desktop' | 'web';
  /** OS notifications (the approver inbox, grants becoming active). */
  notifications: Capability & { notify(n: DesktopNotification): Promise<boolean> };
  /** Sign-in kept in the OS keychain across restarts. */
  keychain: Capability;
}

export const webPlatform: Platform = {
  kind: 'web',
  notifications: {
    available: false,
    unavailableReason: 'Desktop notifications are available in the Sallyport app.',
    notify: async () => false,
  },
  keychain: {
    available: false,
    unavailableReason: 'In the browser your sign-in lasts for this session only.',
  },
};

declare global {
  interface Window {
    /** Set by the desktop app's preload script (contextBridge); absent in a browser. */
    sallyport?: Platform;
  }
}

export const platform: Platform = window.sallyport ?? webPlatform;
