// The embedded store (PGlite) on a thread of its own (pglite-pool.ts).
//
// PGlite runs PostgreSQL compiled to WebAssembly, synchronously, on whatever thread calls it: on
// the gateway's main thread every ledger write (a few ms of CPU) stalled the sockets of every live
// session. Here it runs beside them. Plain JavaScript on purpose: a worker thread gets no
// TypeScript loader, wherever the gateway runs (tsx, vitest, the CLI).
//
// Messages (one query at a time is the pool's job, not this file's):
//   { op: 'open', dataDir }            → { op: 'ready' } | { op: 'failed', error }
//   { op: 'query', id, sql, params }   → { op: 'result', id, command, rowCount, rows }
//                                        | { op: 'result', id, error }
//   { op: 'close' }                    → { op: 'closed' } (after PGlite has closed its files)
// Errors travel as plain objects (structured clone keeps only an Error's message): PostgreSQL's
// fields (code, detail, position, …) must survive, callers branch on `code`.

import { parentPort } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

/** @type {PGlite | undefined} */
let pglite;

/** An error's own fields that are strings or numbers (PostgreSQL's SQLSTATE, detail, position…). */
function plain(err) {
  const out = { message: err instanceof Error ? err.message : String(err), name: 'Error' };
  if (err && typeof err === 'object') {
    if (typeof err.name === 'string') out.name = err.name;
    for (const [k, v] of Object.entries(err)) {
      if (typeof v === 'string' || typeof v === 'number') out[k] = v;
    }
  }
  return out;
}

parentPort.on('message', async (m) => {
  switch (m.op) {
    case 'open':
      try {
        // int8 as JS number, like the pg pool: counts and sequences stay well below 2^53.
        pglite = new PGlite(m.dataDir, { parsers: { 20: (v) => Number(v) } });
        await pglite.waitReady;
        parentPort.postMessage({ op: 'ready' });
      } catch (err) {
        parentPort.postMessage({ op: 'failed', error: plain(err) });
      }
      return;
    case 'query':
      try {
        const r = await pglite.query(m.sql, m.params);
        parentPort.postMessage({
          op: 'result',
          id: m.id,
          command: r.command,
          rowCount: r.rowCount ?? r.affectedRows ?? 0,
          rows: r.rows,
        });
      } catch (err) {
        parentPort.postMessage({ op: 'result', id: m.id, error: plain(err) });
      }
      return;
    case 'close':
      try {
        await pglite?.close();
      } finally {
        parentPort.postMessage({ op: 'closed' });
      }
      return;
  }
});
