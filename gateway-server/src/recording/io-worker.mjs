// The recording writers' file I/O and hashing, off the gateway's main thread (writer.ts).
//
// Plain JavaScript on purpose: a worker thread gets no TypeScript loader, wherever the gateway runs
// (tsx, vitest, the CLI). Messages, in order per recording:
//   { op: 'open', id, fd }                    a file writer.ts opened ('wx'); this worker closes it
//   { op: 'write', id, buffer, length }       whole lines; the buffer is transferred, and sent back
//                                             ('written') once on disk, for the writers' pool
//   { op: 'sync', id }                        fdatasync, if anything was written since the last one
//   { op: 'close', id }                       sync, close; answers 'closed' with the SHA-256 of
//                                             every byte written, or with the first error
// A write error is reported at once ('error'), so the session can be ended while it runs.
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

/** id → { fd, hash, bytes, dirty, error } */
const files = new Map();

const message = (err) => (err instanceof Error ? err.message : String(err));

function fail(id, f, err) {
  if (f.error) return;
  f.error = message(err);
  parentPort.postMessage({ op: 'error', id, message: f.error });
}

function sync(id, f) {
  if (!f.dirty || f.error) return;
  f.dirty = false;
  try {
    fdatasyncSync(f.fd);
  } catch (err) {
    fail(id, f, err);
  }
}

parentPort.on('message', (m) => {
  const f = files.get(m.id);
  switch (m.op) {
    case 'open':
      files.set(m.id, { fd: m.fd, hash: createHash('sha256'), bytes: 0, dirty: false, error: null });
      return;
    case 'write': {
      if (f && !f.error) {
        const data = new Uint8Array(m.buffer, 0, m.length);
        f.hash.update(data);
        f.bytes += m.length;
        try {
          let off = 0;
          while (off < m.length) {
            const n = writeSync(f.fd, data, off, m.length - off);
            if (n <= 0) throw new Error('the recording file accepted no bytes');
            off += n;
          }
          f.dirty = true;
        } catch (err) {
          fail(m.id, f, err);
        }
      }
      parentPort.postMessage({ op: 'written', id: m.id, buffer: m.buffer, length: m.length }, [m.buffer]);
      return;
    }
    case 'sync':
      if (f) sync(m.id, f);
      return;
    case 'close': {
      if (!f) {
        parentPort.postMessage({ op: 'closed', id: m.id, error: 'unknown recording' });
        return;
      }
      files.delete(m.id);
      sync(m.id, f);
      try {
        closeSync(f.fd);
      } catch (err) {
        if (!f.error) f.error = message(err);
      }
      parentPort.postMessage(
        f.error
          ? { op: 'closed', id: m.id, error: f.error }
          : { op: 'closed', id: m.id, sha256: f.hash.digest('hex'), bytes: f.bytes },
      );
      return;
    }
  }
});
