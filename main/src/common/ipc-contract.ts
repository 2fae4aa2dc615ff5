/**
 * The typed bridge between the renderer (through the preload) and the main process.
 * One definition, imported by both sides: every channel names the zod schema of its
 * request and of its response. The main process validates the sender and the request
 * before any handler runs (see ../node/ipc.ts); the preload validates what it sends
 * and what comes back, so a mismatch fails loudly on both sides.
 *
 * Plain zod, no Node or Electron imports: the sandboxed preload bundles this file.
 */
import { z } from 'zod';

const NoArgs = z.object({}).strict();

/**
 * An in-app location the main process may send the window to (notification click, deep
 * link): a console screen (`/inbox`, `/access`, …) or one object (`/targets/<id>`, …).
 */
export const AppPath = z
  .string()
  .max(200)
  .regex(
    /^\/(?:(?:inbox|access|audit)|(?:targets|requests|recordings|reviews)(?:\/[A-Za-z0-9][A-Za-z0-9._-]{0,127})?)?$/,
    'an in-app path such as /inbox, /access, /targets/<id>, /requests/<id> or /recordings/<id>',
  );
export type AppPath = z.infer<typeof AppPath>;

export const Capability = z
  .object({ available: z.boolean(), unavailableReason: z.string().max(300).optional() })
  .strict();
export type Capability = z.infer<typeof Capability>;

export const AuthStatus = z
  .object({
    signedIn: z.boolean(),
    username: z.string().max(200).optional(),
    /** When the current access token expires (ISO 8601); it is refreshed before then. */
    expiresAt: z.string().max(40).optional(),
    /** Where the refresh token lives: the OS keychain (survives restarts) or memory only. */
    persistence: z.enum(['keychain', 'memory']),
    /** Why the sign-in is kept in memory only, shown to the user. */
    persistenceNote: z.string().max(300).optional(),
  })
  .strict();
export type AuthStatus = z.infer<typeof AuthStatus>;

/** Request/response channels (`ipcRenderer.invoke` → `ipcMain.handle`). */
export const ipcContract = {
  'notifications:show': {
    request: z
      .object({
        title: z.string().trim().min(1).max(120),
        body: z.string().max(500),
      })
      .strict(),
    response: z.object({ shown: z.boolean() }).strict(),
  },
  'auth:status': { request: NoArgs, response: AuthStatus },
  /** Opens the system browser for the identity provider's sign-in page (PKCE, loopback redirect). */
  'auth:sign-in': { request: NoArgs, response: AuthStatus },
  'auth:sign-out': { request: NoArgs, response: AuthStatus },
  /**
   * The renderer changed the inbox (approved, denied): the main process re-reads it from
   * the gateway and answers with the badge count. The renderer never sets the number.
   */
  'inbox:refresh': {
    request: NoArgs,
    response: z.object({ badge: z.number().int().min(0) }).strict(),
  },
} as const;

export type IpcChannel = keyof typeof ipcContract;
export type IpcRequest<C extends IpcChannel> = z.input<(typeof ipcContract)[C]['request']>;
export type IpcParsedRequest<C extends IpcChannel> = z.output<(typeof ipcContract)[C]['request']>;
export type IpcResponse<C extends IpcChannel> = z.output<(typeof ipcContract)[C]['response']>;
export const ipcChannels = Object.keys(ipcContract) as IpcChannel[];

/** Main → renderer events (`webContents.send` → `ipcRenderer.on`). */
export const ipcEvents = {
  'app:navigate': z.object({ path: AppPath }).strict(),
  'auth:changed': AuthStatus,
} as const;
export type IpcEventName = keyof typeof ipcEvents;
export type IpcEvent<E extends IpcEventName> = z.output<(typeof ipcEvents)[E]>;

/** What the main process tells the preload at window creation (`webPreferences.additionalArguments`). */
export const CAPABILITY_ARG = '--sallyport-capabilities=';

export const WindowCapabilities = z.object({ notifications: Capability, keychain: Capability }).strict();
export type WindowCapabilities = z.infer<typeof WindowCapabilities>;

export function capabilityArg(c: WindowCapabilities): string {
  return CAPABILITY_ARG + encodeURIComponent(JSON.stringify(WindowCapabilities.parse(c)));
}

const UNKNOWN: Capability = { available: false, unavailableReason: 'The desktop app could not tell.' };

/** Reads the capabilities back in the preload; anything malformed means "not available". */
export function parseCapabilityArgs(argv: readonly string[]): WindowCapabilities {
  const raw = argv.find((a) => a.startsWith(CAPABILITY_ARG));
  if (raw) {
    try {
      const parsed = WindowCapabilities.safeParse(
        JSON.parse(decodeURIComponent(raw.slice(CAPABILITY_ARG.length))),
      );
      if (parsed.success) return parsed.data;
    } catch {
      // fall through
    }
  }
  return { notifications: UNKNOWN, keychain: UNKNOWN };
}

/**
 * What the preload exposes as `window.sallyport`. A structural superset of the
 * renderer's `Platform` (renderer/src/platform.ts), checked by a unit test.
 */
export interface DesktopBridge {
  kind: 'desktop';
  notifications: Capability & { notify(n: { title: string; body: string }): Promise<boolean> };
  keychain: Capability;
  auth: {
    status(): Promise<AuthStatus>;
    signIn(): Promise<AuthStatus>;
    signOut(): Promise<AuthStatus>;
    onChange(listener: (status: AuthStatus) => void): () => void;
  };
  inbox: { refresh(): Promise<number> };
  /** Notification clicks and deep links. Without a listener the preload navigates the page itself. */
  onNavigate(listener: (path: AppPath) => void): () => void;
}

/** One line naming every problem, with its path: what IPC errors and the preload report. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}
