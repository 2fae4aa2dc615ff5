// A fake of the Electron main-process API, just wide enough for main/src/electron-main.
// It records what the app does with Electron and, once the app loads its window, probes
// the handlers the app registered (web requests, navigation, window.open, IPC) the way
// Electron would call them. The report is printed as one `FAKE-ELECTRON-REPORT <json>`
// line and the process exits. Used by main/test/unit/electron-smoke.test.ts.
import { EventEmitter } from 'node:events';

const report = {
  singleInstanceLock: false,
  protocolClients: [],
  windows: [],
  ipcChannels: [],
  loadedUrls: [],
  sent: [],
  dialogs: [],
  openedExternally: [],
  permissionHandlers: 0,
  notifications: [],
  webRequest: {},
  probes: {},
};
const ipcHandlers = new Map();
const webRequest = {};
let permissionRequest;
let permissionCheck;

function finish(extra = {}) {
  Object.assign(report, extra);
  process.stdout.write(`FAKE-ELECTRON-REPORT ${JSON.stringify(report)}\n`);
  process.exit(0);
}

class FakeApp extends EventEmitter {
  isPackaged = false;
  getAppPath() {
    return process.env.FAKE_ELECTRON_APP_PATH ?? process.cwd();
  }
  getPath(name) {
    if (name === 'userData') return process.env.FAKE_ELECTRON_USER_DATA;
    throw new Error(`fake electron: getPath(${name})`);
  }
  requestSingleInstanceLock() {
    report.singleInstanceLock = true;
    return true;
  }
  setAsDefaultProtocolClient(scheme) {
    report.protocolClients.push(scheme);
    return true;
  }
  whenReady() {
    return new Promise((resolve) => setTimeout(resolve, 10));
  }
  setBadgeCount(n) {
    report.badge = n;
    return true;
  }
  quit() {
    finish({ quit: true });
  }
  exit(code) {
    finish({ exitCode: code });
  }
}
export const app = new FakeApp();

let nextId = 1;
class FakeWebContents extends EventEmitter {
  id = nextId++;
  windowOpenHandler;
  url = '';
  setWindowOpenHandler(h) {
    this.windowOpenHandler = h;
  }
  send(channel, payload) {
    report.sent.push({ channel, payload });
  }
  isLoading() {
    return false;
  }
  reload() {}
  getURL() {
    return this.url;
  }
}

export class BrowserWindow extends EventEmitter {
  constructor(options) {
    super();
    this.options = options;
    this.webContents = new FakeWebContents();
    report.windows.push({ options });
    app.emit('web-contents-created', {}, this.webContents);
  }
  static getAllWindows() {
    return [];
  }
  async loadURL(url) {
    this.webContents.url = url;
    report.loadedUrls.push(url);
    // Electron would now load the page; probe the handlers the app installed.
    setTimeout(
      () =>
        probe(this, url).then(
          () => finish(),
          (e) => finish({ probeError: String(e?.stack ?? e) }),
        ),
      10,
    );
  }
  isMinimized() {
    return false;
  }
  restore() {}
  show() {}
  focus() {}
}

export const ipcMain = {
  handle(channel, fn) {
    report.ipcChannels.push(channel);
    ipcHandlers.set(channel, fn);
  },
};

export const dialog = {
  async showMessageBox(opts) {
    report.dialogs.push({ message: opts.message, detail: opts.detail });
    return { response: 1 }; // Quit
  },
  showErrorBox(title, content) {
    report.dialogs.push({ title, content });
  },
};

export const shell = {
  async openExternal(url) {
    report.openedExternally.push(url);
  },
};

export const Menu = { buildFromTemplate: (t) => ({ items: t }) };

export class Notification extends EventEmitter {
  static isSupported() {
    return true;
  }
  constructor(opts) {
    super();
    this.opts = opts;
  }
  show() {
    report.notifications.push(this.opts);
  }
}

export const nativeImage = {
  createFromPath: () => ({ resize: () => ({}) }),
};

export class Tray extends EventEmitter {
  setToolTip(t) {
    report.trayTooltip = t;
  }
  setContextMenu() {}
  setTitle() {}
}

export const safeStorage = {
  isEncryptionAvailable: () => true,
  getSelectedStorageBackend: () => 'basic_text', // a Linux box without a keyring
  encryptString: () => {
    throw new Error('fake electron: the app must not encrypt with basic_text');
  },
  decryptString: () => {
    throw new Error('fake electron: no keyring');
  },
};

export const session = {
  defaultSession: {
    setPermissionRequestHandler(h) {
      permissionRequest = h;
      report.permissionHandlers++;
    },
    setPermissionCheckHandler(h) {
      permissionCheck = h;
      report.permissionHandlers++;
    },
    webRequest: {
      onBeforeRequest(h) {
        webRequest.beforeRequest = h;
      },
      onBeforeSendHeaders(h) {
        webRequest.beforeSendHeaders = h;
      },
      onHeadersReceived(h) {
        webRequest.headersReceived = h;
      },
    },
  },
};

const call = (handler, details) => new Promise((resolve) => handler(details, resolve));

async function probe(win, url) {
  const origin = new URL(url).origin;
  const p = report.probes;
  report.webRequest = Object.fromEntries(Object.keys(webRequest).map((k) => [k, true]));
  p.remoteRequest = await call(webRequest.beforeRequest, {
    url: 'https://cdn.example.com/x.js',
    method: 'GET',
  });
  p.ownRequest = await call(webRequest.beforeRequest, { url: `${origin}/assets/app.js`, method: 'GET' });
  p.headers = await call(webRequest.headersReceived, {
    url: `${origin}/`,
    responseHeaders: { 'content-security-policy': ['default-src *'], 'content-type': ['text/html'] },
  });
  p.apiHeaders = await call(webRequest.beforeSendHeaders, { url: `${origin}/api/me`, requestHeaders: {} });

  const wc = win.webContents;
  const navigate = (target) => {
    let prevented = false;
    wc.emit('will-navigate', { url: target, preventDefault: () => (prevented = true) });
    return prevented;
  };
  p.navigateAway = navigate('https://evil.example/phish');
  p.navigateInApp = navigate(`${origin}/inbox`);
  p.windowOpen = wc.windowOpenHandler({ url: 'https://docs.example.com/guide' });
  p.windowOpenFile = wc.windowOpenHandler({ url: 'file:///etc/passwd' });
  let attachPrevented = false;
  wc.emit('will-attach-webview', { preventDefault: () => (attachPrevented = true) }, {}, {});
  p.webviewPrevented = attachPrevented;

  p.permissionMedia = await new Promise((r) =>
    permissionRequest(wc, 'media', r, { requestingUrl: `${origin}/` }),
  );
  p.permissionClipboard = await new Promise((r) =>
    permissionRequest(wc, 'clipboard-sanitized-write', r, { requestingUrl: `${origin}/` }),
  );
  p.permissionCheckGeo = permissionCheck(wc, 'geolocation', origin);

  const event = (frameUrl, extra = {}) => ({
    senderFrame: { url: frameUrl, parent: null, ...extra },
    sender: { id: wc.id },
  });
  const invoke = async (channel, ev, payload) => {
    try {
      return { ok: await ipcHandlers.get(channel)(ev, payload) };
    } catch (e) {
      return { error: e.message };
    }
  };
  p.ipcStatus = await invoke('auth:status', event(`${origin}/`), {});
  p.ipcForeign = await invoke('auth:status', event('https://evil.example/'), {});
  p.ipcSubframe = await invoke('auth:status', event(`${origin}/`, { parent: {} }), {});
  p.ipcBadPayload = await invoke('notifications:show', event(`${origin}/`), { title: 7 });
  p.ipcNotify = await invoke('notifications:show', event(`${origin}/`), { title: 'Hello', body: '<b>x</b>' });

  wc.emit('did-finish-load');
}
