/**
 * Buffers for terminal output on its way to the client, carved from shared slabs.
 *
 * Why: at bulk rates every output chunk (~32 KiB) used to cost two fresh
 * ArrayBuffers — the masked text encoded back to UTF-8, then the binary frame
 * (one stream byte + the bytes) — and the garbage collector paid for each.
 * Here the masked text is encoded into a slab with one spare byte in front, and
 * the frame is that byte plus the text: no second buffer, no second copy.
 *
 * A view keeps its whole slab alive; views live until the socket has written them
 * (and, for the recording, a few ms), so slabs are freed soon after. Small texts
 * use Node's own pool (Buffer.from), large ones that would waste a slab get their
 * own buffer.
 */

const SLAB = 512 * 1024;
/** Texts shorter than this use Buffer.from (Node's 8 KiB pool): a slab would be pinned by a keystroke echo. */
const MIN_SLAB_TEXT = 2048;
/** Texts longer than this (in UTF-16 units; up to 3 bytes each) get their own buffer. */
const MAX_SLAB_TEXT = Math.floor((SLAB / 4 - 8) / 3);

let slab: Buffer = Buffer.alloc(0);
let used = 0;
/** Views handed out by `encodeOutput` whose spare byte in front is still free. */
const spare = new WeakSet<Buffer>();

/**
 * `text` as UTF-8. When it is large, the result is a slab view with one spare byte before
 * it, which `binaryFrame` uses for the stream byte. The bytes are never changed afterwards.
 */
export function encodeOutput(text: string): Buffer {
  if (text.length < MIN_SLAB_TEXT || text.length > MAX_SLAB_TEXT) return Buffer.from(text, 'utf8');
  const max = 1 + text.length * 3;
  if (used + max > slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB);
    used = 0;
  }
  const start = used + 1;
  const n = slab.write(text, start, 'utf8');
  // Slots start 8-aligned (the view itself one byte later).
  used = (start + n + 7) & ~7;
  const view = slab.subarray(start, start + n);
  spare.add(view);
  return view;
}

/**
 * A binary output frame (protocol/src/terminal.ts `encodeBinaryOutput`): `streamByte`, then
 * `data`. In place (once) when `data` itself came from `encodeOutput`; else a copy.
 */
export function binaryFrame(streamByte: number, data: Buffer): Buffer {
  if (spare.delete(data)) {
    const frame = Buffer.from(data.buffer, data.byteOffset - 1, data.length + 1);
    frame[0] = streamByte;
    return frame;
  }
  const frame = Buffer.allocUnsafe(data.length + 1);
  frame[0] = streamByte;
  data.copy(frame, 1);
  return frame;
}
