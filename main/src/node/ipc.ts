/**
 * The handler registry behind every IPC channel. Before a handler runs, the
 * sender must be the app's own window (its main frame, on the app's origin) and
 * the payload must match the channel's schema; anything else is refused with an
 * error that says why. Plain Node: the Electron layer only forwards
 * `ipcMain.handle` calls to `dispatch`.
 */
import {
  describeIssues,
  type IpcChannel,
  type IpcParsedRequest,
  type IpcResponse,
  ipcChannels,
  ipcContract,
} from '../common/ipc-contract';
import { isSameOrigin } from './navigation-policy';

/** What Electron tells us about who sent a message (from `event.senderFrame`). */
export interface IpcSender {
  /** URL of the frame that sent it. */
  url: string;
  /** False for iframes: only the top-level document may use the bridge. */
  isMainFrame: boolean;
  /** `event.sender.id`, matched against the app's own windows when given. */
  webContentsId?: number;
}

export type IpcErrorCode = 'unknown_channel' | 'forbidden_sender' | 'bad_request' | 'handler_failed';

export class IpcError extends Error {
  constructor(
    readonly code: IpcErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'IpcError';
  }
}

export type IpcHandler<C extends IpcChannel> = (
  request: IpcParsedRequest<C>,
  sender: IpcSender,
) => IpcResponse<C> | Promise<IpcResponse<C>>;

export interface IpcRegistryOptions {
  /** The app's own origin (the gateway that serves the console), e.g. `https://gateway.example.com`. */
  allowedOrigin: string;
  /** The app's windows; when given, messages from any other webContents are refused. */
  isOwnWebContents?: (id: number) => boolean;
  /** Refusals are logged (never the payload: it may carry user text). */
  onRefused?: (channel: string, error: IpcError) => void;
}

export interface IpcRegistry {
  handle<C extends IpcChannel>(channel: C, handler: IpcHandler<C>): void;
  /** Validates sender and payload, runs the handler, validates its answer. Throws IpcError. */
  dispatch(channel: string, sender: IpcSender, payload: unknown): Promise<unknown>;
  /** Channels with a handler; the Electron layer registers exactly these. */
  channels(): IpcChannel[];
  /** Contract channels nobody handles (a wiring bug; checked at start-up). */
  missing(): IpcChannel[];
}

const isChannel = (c: string): c is IpcChannel => Object.hasOwn(ipcContract, c);

export function checkSender(sender: IpcSender, opts: IpcRegistryOptions): string | undefined {
  if (!sender.isMainFrame) return 'messages from embedded frames are not accepted';
  if (
    sender.webContentsId !== undefined &&
    opts.isOwnWebContents &&
    !opts.isOwnWebContents(sender.webContentsId)
  )
    return 'the sender is not a Sallyport window';
  if (!isSameOrigin(sender.url, opts.allowedOrigin)) {
    let origin = 'an unparseable URL';
    try {
      origin = new URL(sender.url).origin;
    } catch {
      // keep the placeholder
    }
    return `the sender's origin (${origin}) is not the app's (${new URL(opts.allowedOrigin).origin})`;
  }
  return undefined;
}

export function createIpcRegistry(opts: IpcRegistryOptions): IpcRegistry {
  new URL(opts.allowedOrigin); // fail fast on a bad origin
  const handlers = new Map<IpcChannel, IpcHandler<IpcChannel>>();

  const refuse = (channel: string, code: IpcErrorCode, message: string): never => {
    const err = new IpcError(code, message);
    opts.onRefused?.(channel, err);
    throw err;
  };

  return {
    handle(channel, handler) {
      if (!isChannel(channel)) throw new Error(`'${channel}' is not in the IPC contract`);
      if (handlers.has(channel)) throw new Error(`IPC channel '${channel}' already has a handler`);
      handlers.set(channel, handler as unknown as IpcHandler<IpcChannel>);
    },

    async dispatch(channel, sender, payload) {
      if (!isChannel(channel) || !handlers.has(channel))
        return refuse(channel, 'unknown_channel', `IPC channel '${channel}' does not exist`);
      const why = checkSender(sender, opts);
      if (why) return refuse(channel, 'forbidden_sender', `IPC '${channel}' refused: ${why}`);
      const spec = ipcContract[channel];
      const parsed = spec.request.safeParse(payload ?? {});
      if (!parsed.success)
        return refuse(
          channel,
          'bad_request',
          `IPC '${channel}' refused: bad request: ${describeIssues(parsed.error)}`,
        );
      const handler = handlers.get(channel)!;
      let result: unknown;
      try {
        result = await handler(parsed.data as IpcParsedRequest<IpcChannel>, sender);
      } catch (err) {
        // The handler's own message is meant for the user (e.g. "sign-in timed out"); keep it.
        return refuse(channel, 'handler_failed', `IPC '${channel}' failed: ${(err as Error).message}`);
      }
      const out = spec.response.safeParse(result);
      if (!out.success)
        return refuse(
          channel,
          'handler_failed',
          `IPC '${channel}' produced a response outside the contract: ${describeIssues(out.error)}`,
        );
      return out.data;
    },

    channels: () => [...handlers.keys()],
    missing: () => ipcChannels.filter((c) => !handlers.has(c)),
  };
}
