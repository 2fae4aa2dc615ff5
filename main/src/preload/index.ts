// The typed bridge the renderer may use, exposed as `window.sallyport` (the renderer's
// `Platform`, plus sign-in, the inbox badge and navigation). Nothing else from Electron
// or Node crosses: no ipcRenderer, no event objects, no generic send/invoke. Requests
// are checked against the shared contract before they leave and answers when they
// come back; the main process checks them again (it trusts no renderer).
//
// Runs sandboxed (CommonJS, bundled with its dependencies by electron-vite).
import { contextBridge, type IpcRendererEvent, ipcRenderer } from 'electron';
import {
  type AppPath,
  type AuthStatus,
  type DesktopBridge,
  describeIssues,
  type IpcChannel,
  type IpcEvent,
  type IpcEventName,
  type IpcRequest,
  type IpcResponse,
  ipcContract,
  ipcEvents,
  parseCapabilityArgs,
} from '../common/ipc-contract';

async function invoke<C extends IpcChannel>(channel: C, request: IpcRequest<C>): Promise<IpcResponse<C>> {
  const spec = ipcContract[channel];
  const req = spec.request.safeParse(request);
  if (!req.success) throw new Error(`sallyport.${channel}: bad request: ${describeIssues(req.error)}`);
  const res = spec.response.safeParse(await ipcRenderer.invoke(channel, req.data));
  if (!res.success) throw new Error(`sallyport.${channel}: unexpected answer: ${describeIssues(res.error)}`);
  return res.data as IpcResponse<C>;
}

function subscribe<E extends IpcEventName>(event: E, listener: (payload: IpcEvent<E>) => void): () => void {
  const wrapped = (_e: IpcRendererEvent, payload: unknown) => {
    const parsed = ipcEvents[event].safeParse(payload);
    if (parsed.success) listener(parsed.data as IpcEvent<E>);
  };
  ipcRenderer.on(event, wrapped);
  return () => {
    ipcRenderer.removeListener(event, wrapped);
  };
}

const page = globalThis as unknown as { location: { assign(url: string): void } };
const navigateListeners = new Set<(path: AppPath) => void>();
// Notification clicks and deep links: the renderer's router if it listens, else a plain
// same-origin navigation (the gateway serves the console for every in-app path).
subscribe('app:navigate', ({ path }) => {
  if (navigateListeners.size === 0) page.location.assign(path);
  else for (const l of navigateListeners) l(path);
});

const caps = parseCapabilityArgs(process.argv);

const bridge: DesktopBridge = {
  kind: 'desktop',
  notifications: {
    ...caps.notifications,
    notify: (n) => invoke('notifications:show', { title: n.title, body: n.body }).then((r) => r.shown),
  },
  keychain: { ...caps.keychain },
  auth: {
    status: () => invoke('auth:status', {}),
    signIn: () => invoke('auth:sign-in', {}),
    signOut: () => invoke('auth:sign-out', {}),
    onChange: (listener: (s: AuthStatus) => void) => subscribe('auth:changed', listener),
  },
  inbox: { refresh: () => invoke('inbox:refresh', {}).then((r) => r.badge) },
  onNavigate(listener) {
    navigateListeners.add(listener);
    return () => {
      navigateListeners.delete(listener);
    };
  },
};

contextBridge.exposeInMainWorld('sallyport', bridge);
