// The Electron main process. Thin on purpose: every decision lives in ../node (plain
// modules tested under Node); this file only connects them to Electron's APIs.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  type IpcMainInvokeEvent,
  ipcMain,
  Menu,
  Notification,
  nativeImage,
  safeStorage,
  session,
  shell,
  Tray,
} from 'electron';
import { AppPath, capabilityArg, type WindowCapabilities } from '../common/ipc-contract';
import { resolveAppConfig } from '../node/app-config';
import { DEEP_LINK_SCHEME, deepLinkFromArgv, parseDeepLink } from '../node/deep-link';
import { createDesktopSession, type DesktopSession } from '../node/desktop-session';
import { createGatewayEvents, type GatewayEvents, type SocketFactory } from '../node/gateway-events';
import { createIpcRegistry, type IpcSender } from '../node/ipc';
import {
  externalOpenable,
  navigationDecision,
  permissionAllowed,
  requestAllowed,
  secureWebPreferences,
  wantsBearer,
  withDesktopCsp,
} from '../node/navigation-policy';
import { escapeNotificationMarkup, NotificationCenter, type OsNotification } from '../node/notifications';
import type { SecretBox } from '../node/token-store';

const here = import.meta.dirname;
const PRELOAD = path.join(here, '../preload/index.cjs');
const ICON = path.join(app.getAppPath(), 'resources', 'icon.png');

function readConfigFile(): string | undefined {
  try {
    return readFileSync(path.join(app.getPath('userData'), 'config.json'), 'utf8');
  } catch {
    return undefined;
  }
}

const config = resolveAppConfig({ argv: process.argv, env: process.env, fileText: readConfigFile() });
const appOrigin = new URL(config.gatewayUrl).origin;

/**
 * safeStorage is the OS keychain (Keychain, DPAPI, libsecret/kwallet). On Linux without
 * a keyring Electron falls back to a hard-coded key ('basic_text'): that is not
 * encryption worth the name, so it counts as unavailable and nothing is written.
 */
const keychain: SecretBox = {
  isEncryptionAvailable: () =>
    safeStorage.isEncryptionAvailable() &&
    (process.platform !== 'linux' || safeStorage.getSelectedStorageBackend() !== 'basic_text'),
  encryptString: (s) => safeStorage.encryptString(s),
  decryptString: (b) => safeStorage.decryptString(b),
};

let win: BrowserWindow | undefined;
let tray: Tray | undefined;
let desktop: DesktopSession | undefined;
let events: GatewayEvents | undefined;
const pendingPaths: AppPath[] = [];
const liveNotifications = new Set<Notification>(); // kept referenced until closed, or clicks are lost

// ------------------------------------------------------------ single instance, deep links

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', (_event, argv) => {
    focusWindow();
    const link = deepLinkFromArgv(argv);
    if (link) openDeepLink(link.ok ? link.link.path : undefined, link.ok ? undefined : link.reason);
  });
  // macOS delivers links as an event, possibly before the app is ready.
  app.on('open-url', (event, url) => {
    event.preventDefault();
    const r = parseDeepLink(url);
    openDeepLink(r.ok ? r.link.path : undefined, r.ok ? undefined : r.reason);
  });
  if (process.defaultApp && process.argv[1]) {
    app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME, process.execPath, [path.resolve(process.argv[1])]);
  } else {
    app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME);
  }
  const first = deepLinkFromArgv(process.argv);
  if (first?.ok) pendingPaths.push(first.link.path as AppPath);

  app
    .whenReady()
    .then(start)
    .catch((err: Error) => fatal(err));
}

function openDeepLink(p: string | undefined, problem: string | undefined): void {
  if (!p) {
    console.warn(`ignored an invalid ${DEEP_LINK_SCHEME}:// link: ${problem}`);
    return;
  }
  navigate(p);
}

function navigate(p: string): void {
  const parsed = AppPath.safeParse(p);
  if (!parsed.success) return;
  focusWindow();
  if (!win || !desktop || win.webContents.isLoading()) {
    pendingPaths.push(parsed.data); // sent once the console has loaded
    return;
  }
  win.webContents.send('app:navigate', { path: parsed.data });
}

function focusWindow(): void {
  const w = win ?? createWindow();
  if (w.isMinimized()) w.restore();
  w.show();
  w.focus();
}

// ------------------------------------------------------------ start-up

async function start(): Promise<void> {
  lockDownSession();
  lockDownAllWebContents();
  createWindow();
  createTray();
  for (;;) {
    try {
      desktop = await createDesktopSession({
        gatewayUrl: config.gatewayUrl,
        userDataDir: app.getPath('userData'),
        box: keychain,
        openExternal: (url) => shell.openExternal(url),
        allowLoopbackHttp: config.allowLoopbackHttp,
        log: (level, message) => console[level](`sallyport: ${message}`),
      });
      break;
    } catch (err) {
      const { response } = await dialog.showMessageBox({
        type: 'error',
        title: 'Sallyport',
        message: 'Cannot reach the Sallyport gateway',
        detail: `${(err as Error).message}\n\nGateway: ${config.gatewayUrl} (from ${config.source})`,
        buttons: ['Retry', 'Quit'],
        defaultId: 0,
        cancelId: 1,
      });
      if (response !== 0) {
        app.quit();
        return;
      }
    }
  }
  const session = desktop;
  wireIpc(session);
  let wasSignedIn = false;
  session.store.onChange(() => {
    const status = session.status();
    win?.webContents.send('auth:changed', status);
    if (status.signedIn === wasSignedIn) return; // a refresh: the event socket re-reads the token itself
    wasSignedIn = status.signedIn;
    if (status.signedIn) events?.start();
    else {
      events?.stop();
      center.clear();
    }
  });
  events = createGatewayEvents({
    gatewayUrl: session.gatewayUrl,
    token: () => session.store.accessToken(),
    socket: webSocketFactory(),
    onMessage: (msg) => {
      center.handle(msg);
      if (msg.type === 'hello') void center.resync().catch(() => {});
    },
  });
  await session.restore();
  wasSignedIn = session.status().signedIn;
  if (wasSignedIn) events.start();
  void win?.loadURL(session.gatewayUrl);
}

function webSocketFactory(): SocketFactory {
  return (url) => {
    // Electron's main process runs a Node with the WHATWG WebSocket global.
    const WS = (globalThis as unknown as { WebSocket?: new (url: string) => unknown }).WebSocket;
    if (!WS) throw new Error('this runtime has no WebSocket in the main process');
    return new WS(url) as ReturnType<SocketFactory>;
  };
}

function fatal(err: Error): void {
  dialog.showErrorBox('Sallyport', err.stack ?? err.message);
  app.exit(1);
}

// ------------------------------------------------------------ the session: headers, CSP, requests

function lockDownSession(): void {
  const ses = session.defaultSession;
  // No camera, microphone, geolocation, page notifications (the bridge has its own), clipboard-read…
  ses.setPermissionRequestHandler((wc, permission, callback, details) =>
    callback(permissionAllowed(permission, details.requestingUrl ?? wc.getURL(), appOrigin)),
  );
  ses.setPermissionCheckHandler((_wc, permission, requestingOrigin) =>
    permissionAllowed(permission, requestingOrigin, appOrigin),
  );
  ses.webRequest.onBeforeRequest((details, callback) => {
    const allowed = requestAllowed(details.url, appOrigin);
    if (!allowed) console.warn(`blocked a request to ${new URL(details.url).origin}`);
    // The console's own sign-out: the desktop session ends with it.
    if (allowed && details.method === 'POST' && new URL(details.url).pathname === '/auth/logout')
      void desktop?.signOut();
    callback({ cancel: !allowed });
  });
  ses.webRequest.onBeforeSendHeaders((details, callback) => {
    if (!desktop || !wantsBearer(details.url, appOrigin))
      return callback({ requestHeaders: details.requestHeaders });
    desktop.store
      .accessToken()
      .catch(() => undefined)
      .then((token) => {
        const requestHeaders = { ...details.requestHeaders };
        if (token) requestHeaders.Authorization = `Bearer ${token}`;
        callback({ requestHeaders });
      });
  });
  ses.webRequest.onHeadersReceived((details, callback) => {
    if (!requestAllowed(details.url, appOrigin)) return callback({ cancel: true });
    callback({ responseHeaders: withDesktopCsp(details.responseHeaders, appOrigin) });
  });
}

function lockDownAllWebContents(): void {
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(({ url }) => {
      if (externalOpenable(url)) void shell.openExternal(url);
      return { action: 'deny' };
    });
    contents.on('will-navigate', (event) => {
      const decision = navigationDecision(event.url, appOrigin);
      if (decision === 'allow') return;
      event.preventDefault();
      if (decision === 'sign-in') void signInFromWindow();
    });
    contents.on('will-redirect', (event) => {
      if (navigationDecision(event.url, appOrigin) !== 'allow') event.preventDefault();
    });
  });
}

async function signInFromWindow(): Promise<void> {
  if (!desktop) return;
  try {
    await desktop.signIn();
    win?.webContents.reload();
  } catch (err) {
    dialog.showErrorBox('Sign-in failed', (err as Error).message);
  }
}

// ------------------------------------------------------------ window, tray, notifications

function capabilities(): WindowCapabilities {
  const box = keychain.isEncryptionAvailable();
  return {
    notifications: Notification.isSupported()
      ? { available: true }
      : { available: false, unavailableReason: 'This system does not support desktop notifications.' },
    keychain: box
      ? { available: true }
      : {
          available: false,
          unavailableReason: 'No OS keychain is available, so your sign-in lasts until the app quits.',
        },
  };
}

/** Creates the window; it loads the console once the gateway session exists. */
function createWindow(): BrowserWindow {
  const w = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 900,
    minHeight: 600,
    title: 'Sallyport',
    show: false,
    icon: ICON,
    webPreferences: {
      ...secureWebPreferences,
      preload: PRELOAD,
      additionalArguments: [capabilityArg(capabilities())],
    },
  });
  win = w;
  w.once('ready-to-show', () => w.show());
  w.webContents.on('did-finish-load', () => {
    for (const p of pendingPaths.splice(0)) w.webContents.send('app:navigate', { path: p });
  });
  w.on('closed', () => {
    if (win === w) win = undefined;
  });
  if (desktop) void w.loadURL(desktop.gatewayUrl);
  return w;
}

function createTray(): void {
  const image = nativeImage.createFromPath(ICON).resize({ width: 16, height: 16 });
  tray = new Tray(image);
  tray.setToolTip('Sallyport');
  tray.setContextMenu(
    Menu.buildFromTemplate([
      { label: 'Open Sallyport', click: () => focusWindow() },
      { label: 'Inbox', click: () => navigate('/inbox') },
      { type: 'separator' },
      { label: 'Quit', role: 'quit' },
    ]),
  );
  tray.on('click', () => focusWindow());
}

function setBadge(count: number): void {
  app.setBadgeCount(count); // dock (macOS), launcher (Linux/Unity)
  tray?.setToolTip(count ? `Sallyport — ${count} waiting for you` : 'Sallyport');
  if (process.platform === 'darwin') tray?.setTitle(count ? String(count) : '');
}

function showNotification(n: {
  title: string;
  body: string;
  path?: AppPath;
  urgency?: OsNotification['urgency'];
}) {
  if (!Notification.isSupported()) return false;
  const note = new Notification({
    title: n.title,
    body: process.platform === 'linux' ? escapeNotificationMarkup(n.body) : n.body,
    urgency: n.urgency ?? 'normal',
    icon: ICON,
  });
  liveNotifications.add(note);
  note.on('close', () => liveNotifications.delete(note));
  note.on('click', () => {
    liveNotifications.delete(note);
    focusWindow();
    if (n.path) navigate(n.path);
  });
  note.show();
  return true;
}

const center = new NotificationCenter({
  me: () => {
    const s = desktop?.status();
    return s?.signedIn && s.username ? { username: s.username } : undefined;
  },
  show: (n) => showNotification(n),
  // With the window open the console shows OS notifications itself (through the bridge).
  shouldShow: () => !win,
  badge: (count) => setBadge(count),
  fetchInbox: async () => {
    if (!desktop) return { requestIds: [], reviewIds: [] };
    const [requests, reviews] = await Promise.all([
      desktop.gateway.requests({ scope: 'inbox', status: 'pending' }),
      desktop.gateway.reviews({ scope: 'inbox', status: 'pending' }),
    ]);
    return { requestIds: requests.map((r) => r.id), reviewIds: reviews.map((r) => r.id) };
  },
});

// ------------------------------------------------------------ IPC

function senderOf(event: IpcMainInvokeEvent): IpcSender {
  const frame = event.senderFrame;
  return {
    url: frame?.url ?? '',
    isMainFrame: frame !== null && frame.parent === null,
    webContentsId: event.sender.id,
  };
}

function wireIpc(session: DesktopSession): void {
  const registry = createIpcRegistry({
    allowedOrigin: appOrigin,
    isOwnWebContents: (id) => win?.webContents.id === id,
    onRefused: (channel, err) => console.warn(`refused IPC on '${channel}': ${err.message}`),
  });
  registry.handle('notifications:show', (n) => ({ shown: showNotification(n) }));
  registry.handle('auth:status', () => session.status());
  registry.handle('auth:sign-in', () => session.signIn());
  registry.handle('auth:sign-out', () => session.signOut());
  registry.handle('inbox:refresh', async () => ({ badge: await center.resync() }));
  const missing = registry.missing();
  if (missing.length) throw new Error(`IPC channels without a handler: ${missing.join(', ')}`);
  for (const channel of registry.channels()) {
    ipcMain.handle(channel, (event, payload: unknown) =>
      registry.dispatch(channel, senderOf(event), payload),
    );
  }
}

// ------------------------------------------------------------ lifecycle

// Closing the window keeps the tray (and notifications) alive on every platform;
// Quit in the tray menu ends the app.
app.on('window-all-closed', () => {
  // stay in the tray
});
app.on('activate', () => focusWindow());
app.on('before-quit', () => {
  events?.stop();
  desktop?.dispose();
});
