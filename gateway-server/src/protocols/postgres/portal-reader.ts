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
  stream: { cork?(): void; uncork?(): void };
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
  private ready: PortalPage | undefined;
  private failure: unknown;
  private meta:
    | { rows: (string | null)[][]; resolve(rows: (string | null)[][]): void; reject(e: unknown): void }
    | undefined;
  private synced = false;
  private settle!: { resolve(): void; reject(e: unknown): void };

  constructor(
    readonly text: string,
    private readonly pageSize: number,
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
    if (this.ready) {
      const page = this.ready;
      this.ready = undefined;
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
    if (this.state === 'suspended') this.finish();
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
    connection.execute({ portal: '', rows: this.pageSize });
    connection.flush();
    stream.uncork?.();
  }

  handleRowDescription(msg: { fields: FieldDef[] }): void {
    this.fields = msg.fields;
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    (this.meta ? this.meta.rows : this.rows).push(msg.fields);
  }

  handlePortalSuspended(): void {
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
    // After an error PostgreSQL skips everything up to the next Sync; one Sync brings it back.
    // (pg also calls this for a dead socket, where writing is a no-op.)
    if (!this.synced && this.con) {
      this.synced = true;
      this.con.sync();
    }
    this.ready = undefined;
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
    this.settle.resolve();
  }

  handleCopyInResponse(connection: { sendCopyFail(msg: string): void }): void {
    connection.sendCopyFail('COPY is not supported through the gateway');
  }

  handleCopyData(): void {}

  // ------------------------------------------------------------------------------------ helpers

  private deliver(done: boolean): void {
    const page = { rows: this.rows, done };
    this.rows = [];
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w.resolve(page);
    else this.ready = page;
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
