import {
  decodeBinaryOutput,
  type NoticeLevel,
  type TerminalClientMessage,
  TerminalServerMessage,
} from '@sallyport/protocol';
import { createStore, type StoreApi } from 'zustand/vanilla';
import {
  base64ToBytes,
  binaryStringToBase64,
  describeSocketClose,
  socketUrl,
  textToBase64,
} from '../tabs/socket';

/** A message from the gateway itself (never the target), shown in a banner above the terminal. */
export interface GatewayNotice {
  id: number;
  level: NoticeLevel;
  code: string;
  message: string;
  at: number;
}

export type TerminalPhase = 'connecting' | 'ready' | 'closed';

export interface TerminalConnectionState {
  phase: TerminalPhase;
  sessionId: string | null;
  notices: GatewayNotice[];
  /** Why the channel closed: the gateway's `closed` frame, or the socket's own close. */
  closed: { code: string; reason: string } | null;
  exit: { code: number | null; signal?: string } | null;
}

export interface TerminalConnectionOptions {
  targetId: string;
  grantId: string;
  cols: number;
  rows: number;
  onOutput(bytes: Uint8Array): void;
}

const MAX_NOTICES = 6;
let noticeSeq = 0;

/**
 * One SSH session over `/api/terminal` (protocol/src/terminal.ts): `open`, then keystrokes and
 * resizes up, output, notices, `exit` and `closed` down. The socket is authenticated by the
 * console's session cookie (same origin), so no `auth` frame is sent.
 */
export class TerminalConnection {
  readonly store: StoreApi<TerminalConnectionState>;
  private ws: WebSocket | null = null;
  private size: { cols: number; rows: number };
  /** The size the `open` frame carried: a resize before `ready` is sent once the session is up. */
  private openedSize: { cols: number; rows: number } | null = null;

  constructor(private readonly opts: TerminalConnectionOptions) {
    this.size = { cols: opts.cols, rows: opts.rows };
    this.store = createStore<TerminalConnectionState>()(() => ({
      phase: 'connecting',
      sessionId: null,
      notices: [],
      closed: null,
      exit: null,
    }));
  }

  connect(): void {
    const ws = new WebSocket(socketUrl('/api/terminal'));
    // Output comes as binary frames (`binaryOutput` below): the bytes as the target sent them
    // (masked), with no JSON, validation or base64 to undo per chunk.
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.openedSize = { ...this.size };
      this.send({
        type: 'open',
        targetId: this.opts.targetId,
        grantId: this.opts.grantId,
        mode: 'shell',
        cols: this.size.cols,
        rows: this.size.rows,
        binaryOutput: true,
      });
    };
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) {
        // A chunk may end inside a UTF-8 character: xterm's write(Uint8Array) keeps the partial
        // character and completes it with the next chunk.
        const out = decodeBinaryOutput(new Uint8Array(ev.data));
        if (out) this.opts.onOutput(out.data);
        return;
      }
      if (typeof ev.data !== 'string') return;
      let json: unknown;
      try {
        json = JSON.parse(ev.data);
      } catch {
        return;
      }
      const parsed = TerminalServerMessage.safeParse(json);
      if (parsed.success) this.onFrame(parsed.data);
    };
    ws.onclose = (ev) => {
      this.ws = null;
      const s = this.store.getState();
      if (s.phase === 'closed') return;
      this.store.setState({
        phase: 'closed',
        closed: { code: 'connection_lost', reason: ev.reason || describeSocketClose(ev.code) },
      });
    };
  }

  private onFrame(f: TerminalServerMessage): void {
    switch (f.type) {
      case 'ready':
        this.store.setState({ phase: 'ready', sessionId: f.sessionId });
        if (
          this.openedSize &&
          (this.openedSize.cols !== this.size.cols || this.openedSize.rows !== this.size.rows)
        ) {
          this.send({ type: 'resize', ...this.size });
        }
        break;
      case 'output':
        this.opts.onOutput(base64ToBytes(f.data));
        break;
      case 'notice': {
        const notice: GatewayNotice = {
          id: ++noticeSeq,
          level: f.level,
          code: f.code,
          message: f.message,
          at: Date.now(),
        };
        this.store.setState((s) => ({
          notices: [...s.notices.filter((n) => n.code !== f.code || n.message !== f.message), notice].slice(
            -MAX_NOTICES,
          ),
        }));
        break;
      }
      case 'exit':
        this.store.setState({ exit: { code: f.code, ...(f.signal ? { signal: f.signal } : {}) } });
        break;
      case 'closed':
        this.store.setState({ phase: 'closed', closed: { code: f.code, reason: f.reason } });
        break;
    }
  }

  private send(msg: TerminalClientMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  get isReady(): boolean {
    return this.store.getState().phase === 'ready';
  }

  /** Keystrokes or pasted text (UTF-8). */
  input(text: string): void {
    if (!this.isReady || text.length === 0) return;
    // A frame carries at most 256 KiB of base64: split large pastes.
    for (let i = 0; i < text.length; i += 64 * 1024) {
      this.send({ type: 'input', data: textToBase64(text.slice(i, i + 64 * 1024)) });
    }
  }

  /** xterm's binary input (mouse reports): one byte per character. */
  inputBinary(data: string): void {
    if (this.isReady && data.length > 0) this.send({ type: 'input', data: binaryStringToBase64(data) });
  }

  resize(cols: number, rows: number): void {
    const c = Math.max(1, Math.min(1000, cols));
    const r = Math.max(1, Math.min(1000, rows));
    if (c === this.size.cols && r === this.size.rows) return;
    this.size = { cols: c, rows: r };
    if (this.isReady) this.send({ type: 'resize', cols: c, rows: r });
  }

  dismissNotice(id: number): void {
    this.store.setState((s) => ({ notices: s.notices.filter((n) => n.id !== id) }));
  }

  /** Ends the session from this side (tab closed, or "Disconnect"). */
  close(): void {
    const ws = this.ws;
    this.ws = null;
    if (this.store.getState().phase !== 'closed') {
      this.store.setState({
        phase: 'closed',
        closed: { code: 'client_closed', reason: 'You closed the session.' },
      });
    }
    if (!ws) return;
    // Closing a socket that is still connecting makes Chromium log an error: close it once open.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
    else if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  }
}
