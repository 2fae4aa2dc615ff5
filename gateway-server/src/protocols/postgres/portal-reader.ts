// One statement read in pages from an unnamed portal, through pg's "submittable" interface.
//
// Why not pg-cursor (the well-kept library for this): it needs a round trip for the row
// description before its first Execute, and it hands over the last page only at ReadyForQuery,
// after a further Close + Sync round trip. A point SELECT then costs three round trips. Here
// Parse, Bind, Describe, Execute(page) and Flush leave in one write, every page is handed over as
// soon as PostgreSQL suspends or completes the portal, and the closing Sync runs while the caller
// is already sending the rows on. The price is ~150 lines against pg's documented submittable
// contract (submit + handle* callbacks), which pg-cursor and pg-query-stream also rely on.
//
// Flow control: PostgreSQL produces at most `pageSize` rows per Execute, and the next Execute is
// written only when the caller asks for the next page, so memory stays at one page whatever the
// result size. Rows arrive as PostgreSQL's text (pg-protocol leaves DataRow fields as strings).
//
// Transactions: outside a transaction block the statement runs in the implicit transaction that
// the final Sync ends (for `read` sessions it is read-only: the session's
// default_transaction_read_only=on). Inside a block the portal is closed explicitly before Sync.
//
// One-shot mode (`oneShot`, outside a transaction block only): Parse, Bind, Describe,
// Execute(maxRows) and Sync leave in one write and nothing more is written: a point SELECT costs
// one write and one round trip instead of two. PostgreSQL then streams up to maxRows rows at
// once, so flow control moves to the socket: once a page is waiting for the caller the socket is
// paused (PostgreSQL blocks on its send buffer) and resumed when the caller takes the page.
// Memory stays at about two pages plus one socket read. A catalogue lookup cannot run inside this
// exchange: a caller that must look something up first calls unbounded(), and the rest of the
// result (at most maxRows rows) is buffered until ReadyForQuery frees the connection.

import type { FieldDef } from 'pg';

/** The subset of pg's Connection a submittable writes to. */
interface PgConnection {
  parse(q: { text: string; name?: string; types?: number[] }): void;
  bind(c: { portal?: string; statement?: string; values?: unknown[] }): void;
  describe(m: { type: 'P' | 'S'; name?: string }): void;
  execute(c: { portal?: string; rows?: number }): void;
  close(m: { type: 'P' | 'S'; name?: string }): void;
  flush(): void;
  sync(): void;
  stream: { cork?(): void; uncork?(): void; pause?(): void; resume?(): void };
}

export interface PortalPage {
  rows: (string | null)[][];
  /** The portal is complete: no further page. */
  done: boolean;
}

/** Statement and portal name of lookup(); closed again in the same exchange. */
const META = 'sallyport_meta';

type State = 'new' | 'reading' | 'suspended' | 'complete' | 'error' | 'finished';

export class PortalReader {
  /** Result columns; null for statements that return no rows (known once the first page arrives). */
  fields: FieldDef[] | null = null;
  /** The command tag's verb ("SELECT", "INSERT", …) and row count, once complete. */
  command = '';
  rowCount: number | null = null;
  /** Settles at ReadyForQuery: the connection is free again (rejects only when the statement failed). */
  readonly finished: Promise<void>;

  private state: State = 'new';
  private con: PgConnection | undefined;
  private rows: (string | null)[][] = [];
  private waiter: { resolve(p: PortalPage): void; reject(e: unknown): void } | undefined;
  /** Pages delivered and not yet taken (at most one in paged mode). */
  private readonly ready: PortalPage[] = [];
  /** One-shot mode: socket paused because a page waits for the caller. */
  private paused = false;
  /** One-shot mode: buffer without pausing (a lookup waits for ReadyForQuery). */
  private noPause = false;
  /** One-shot mode: the caller stopped reading; remaining rows are dropped. */
  private discarding = false;
  private failure: unknown;
  private meta:
    | { rows: (string | null)[][]; resolve(rows: (string | null)[][]): void; reject(e: unknown): void }
    | undefined;
  private synced = false;
  private settle!: { resolve(): void; reject(e: unknown): void };

  constructor(
    readonly text: string,
    private readonly pageSize: number,
    private readonly oneShot?: { maxRows: number },
  ) {
    this.finished = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // A failure is reported through next(); nobody has to await `finished` for it.
    this.finished.catch(() => {});
  }

  /** The next page. The first call is answered from the Execute written at submit. */
  next(): Promise<PortalPage> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const page = this.ready.shift();
    if (page) {
      if (this.paused && this.ready.length === 0) this.resumeSocket();
      return Promise.resolve(page);
    }
    if (this.state === 'complete' || this.state === 'finished') {
      return Promise.resolve({ rows: [], done: true });
    }
    if (this.waiter) return Promise.reject(new Error('PortalReader: a page is already being read'));
    if (this.state === 'suspended' && this.con) {
      this.state = 'reading';
      this.con.execute({ portal: '', rows: this.pageSize });
      this.con.flush();
    }
    return new Promise<PortalPage>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Rows received and not yet taken by the caller (what flow control keeps small). */
  get bufferedRows(): number {
    let n = this.rows.length;
    for (const p of this.ready) n += p.rows.length;
    return n;
  }

  /** True while the portal is suspended between pages and nothing else is in flight. */
  get suspended(): boolean {
    return this.state === 'suspended' && !this.meta;
  }

  /**
   * Runs a catalogue query while the portal is suspended, in the same exchange (pg's own queue is
   * blocked by this reader until ReadyForQuery, and the portal would not survive a Sync). Used to
   * describe a result's columns before its first rows are masked. Values are sent as text.
   */
  lookup(text: string, values: string[]): Promise<(string | null)[][]> {
    if (!this.suspended || !this.con) return Promise.reject(new Error('PortalReader: not suspended'));
    const con = this.con;
    return new Promise((resolve, reject) => {
      this.meta = { rows: [], resolve, reject };
      con.stream.cork?.();
      con.parse({ text, name: META });
      con.bind({ portal: META, statement: META, values });
      con.execute({ portal: META, rows: 0 });
      con.close({ type: 'P', name: META });
      con.close({ type: 'S', name: META });
      con.flush();
      con.stream.uncork?.();
    });
  }

  /** Stops reading early (row cap, cancel): closes the portal and ends the exchange. */
  close(): void {
    if (this.oneShot) {
      // Sync is already on its way: drop what is still coming, up to ReadyForQuery.
      if (this.state === 'reading') {
        this.discarding = true;
        this.rows = [];
      }
      this.ready.length = 0;
      if (this.paused) this.resumeSocket();
      return;
    }
    if (this.state === 'suspended') this.finish();
  }

  /**
   * One-shot mode: stop pausing the socket, because the caller needs the connection after this
   * exchange (a catalogue lookup); the rest of the result is buffered (at most maxRows rows).
   */
  unbounded(): void {
    this.noPause = true;
    if (this.paused) this.resumeSocket();
  }

  // ------------------------------------------------------------------ pg's submittable contract

  submit(connection: PgConnection): void {
    this.con = connection;
    this.state = 'reading';
    const { stream } = connection;
    stream.cork?.();
    connection.parse({ text: this.text });
    connection.bind({ portal: '', statement: '', values: [] });
    connection.describe({ type: 'P', name: '' });
    if (this.oneShot) {
      connection.execute({ portal: '', rows: this.oneShot.maxRows });
      this.synced = true;
      connection.sync();
    } else {
      connection.execute({ portal: '', rows: this.pageSize });
      connection.flush();
    }
    stream.uncork?.();
  }

  handleRowDescription(msg: { fields: FieldDef[] }): void {
    this.fields = msg.fields;
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (this.meta) {
      this.meta.rows.push(msg.fields);
      return;
    }
    if (this.discarding) return;
    this.rows.push(msg.fields);
    if (this.oneShot && this.rows.length >= this.pageSize) {
      this.deliver(false);
      // A page waits for the caller: let PostgreSQL wait too (unless a lookup needs the exchange over).
      if (this.ready.length > 0 && !this.noPause && !this.paused && this.con?.stream.pause) {
        this.paused = true;
        this.con.stream.pause();
      }
    }
  }

  handlePortalSuspended(): void {
    if (this.oneShot) {
      // maxRows reached: the Sync already sent ends the portal; this is the last page.
      this.state = 'complete';
      this.deliver(true);
      return;
    }
    this.state = 'suspended';
    this.deliver(false);
  }

  handleCommandComplete(msg: { text: string }): void {
    if (this.meta) {
      const { rows, resolve } = this.meta;
      this.meta = undefined;
      resolve(rows);
      return;
    }
    const parts = msg.text.split(' ');
    this.command = parts[0] ?? '';
    const n = Number(parts[parts.length - 1]);
    this.rowCount = parts.length > 1 && Number.isFinite(n) ? n : null;
    this.state = 'complete';
    this.deliver(true);
    this.finish();
  }

  handleEmptyQuery(): void {
    this.state = 'complete';
    this.deliver(true);
    this.finish();
  }

  handleError(err: unknown): void {
    this.state = 'error';
    this.failure = err;
    if (this.paused) this.resumeSocket();
    // After an error PostgreSQL skips everything up to the next Sync; one Sync brings it back.
    // (pg also calls this for a dead socket, where writing is a no-op.)
    if (!this.synced && this.con) {
      this.synced = true;
      this.con.sync();
    }
    this.ready.length = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
    const m = this.meta;
    this.meta = undefined;
    m?.reject(err);
    this.settle.reject(err);
  }

  handleReadyForQuery(): void {
    if (this.state !== 'error') this.state = 'finished';
    if (this.paused) this.resumeSocket();
    this.settle.resolve();
  }

  handleCopyInResponse(connection: { sendCopyFail(msg: string): void }): void {
    connection.sendCopyFail('COPY is not supported through the gateway');
  }

  handleCopyData(): void {}

  // ------------------------------------------------------------------------------------ helpers

  private deliver(done: boolean): void {
    if (this.discarding) return;
    const page = { rows: this.rows, done };
    this.rows = [];
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w.resolve(page);
    else this.ready.push(page);
  }

  private resumeSocket(): void {
    this.paused = false;
    this.con?.stream.resume?.();
  }

  private finish(): void {
    if (this.synced || !this.con) return;
    this.synced = true;
    this.state = this.state === 'suspended' ? 'complete' : this.state;
    const { stream } = this.con;
    stream.cork?.();
    // Inside a transaction block the unnamed portal would outlive the Sync.
    this.con.close({ type: 'P', name: '' });
    this.con.sync();
    stream.uncork?.();
  }
}
