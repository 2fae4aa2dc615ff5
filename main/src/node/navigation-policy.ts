/**
 * Where the desktop window may go. Pure logic, tested under Node; the Electron
 * layer only wires it to `will-navigate` and `setWindowOpenHandler`.
 */
export function isSameOrigin(url: string, allowedOrigin: string): boolean {
  try {
    return new URL(url).origin === new URL(allowedOrigin).origin;
  } catch {
    return false;
  }
}

/** Links the user clicks that leave the app open in the system browser, but only http(s). */
export function externalOpenable(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Chromium switches for the BrowserWindow: the renderer gets no Node, no Electron, no remote content. */
export const secureWebPreferences = {
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  webviewTag: false,
  spellcheck: false,
} as const;
