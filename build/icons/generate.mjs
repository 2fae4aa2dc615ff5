#!/usr/bin/env node
// Rasterises the app icon (the geometry of icon.svg) to PNG with no image library:
// 4x4 supersampling and a minimal PNG encoder (zlib from Node). Run from the repo root:
//   node build/icons/generate.mjs
// Writes build/icons/icon.png (512x512, for electron-builder) and main/resources/icon.png
// (the window and tray icon).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

const NAVY = [0x1f, 0x2a, 0x44];
const STONE = [0xe8, 0xec, 0xf4];
const GOLD = [0xf2, 0xb2, 0x33];

const inRect = (x, y, rx, ry, w, h) => x >= rx && x < rx + w && y >= ry && y < ry + h;

function inRoundedRect(x, y, rx, ry, w, h, r) {
  if (!inRect(x, y, rx, ry, w, h)) return false;
  const cx = Math.min(Math.max(x, rx + r), rx + w - r);
  const cy = Math.min(Math.max(y, ry + r), ry + h - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
}

// The gate opening: a rectangle 168..344 from y=248 down, topped by a half circle of radius 88.
const inArch = (x, y) =>
  (inRect(x, y, 168, 248, 176, 168) || (y < 248 && (x - 256) ** 2 + (y - 248) ** 2 <= 88 * 88)) && y < 416;

const bars = [194, 226, 258, 290, 322];

/** RGBA of one sample point (in 512-space), or null for transparent. */
function sample(x, y) {
  if (!inRoundedRect(x, y, 32, 32, 448, 448, 96)) return null;
  const tower =
    inRect(x, y, 112, 136, 288, 280) ||
    inRect(x, y, 112, 96, 64, 48) ||
    inRect(x, y, 224, 96, 64, 48) ||
    inRect(x, y, 336, 96, 64, 48);
  if (!tower) return NAVY;
  if (!inArch(x, y)) return STONE;
  const bar =
    bars.some((bx) => inRect(x, y, bx, 160, 12, 180)) ||
    inRect(x, y, 168, 232, 176, 12) ||
    inRect(x, y, 168, 292, 176, 12);
  return bar ? GOLD : NAVY;
}

export function render(size) {
  const ss = 4;
  const scale = 512 / size;
  const px = Buffer.alloc(size * size * 4);
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      for (let sy = 0; sy < ss; sy++) {
        for (let sx = 0; sx < ss; sx++) {
          const c = sample((i + (sx + 0.5) / ss) * scale, (j + (sy + 0.5) / ss) * scale);
          if (!c) continue;
          r += c[0];
          g += c[1];
          b += c[2];
          a++;
        }
      }
      const o = (j * size + i) * 4;
      if (a) {
        px[o] = Math.round(r / a);
        px[o + 1] = Math.round(g / a);
        px[o + 2] = Math.round(b / a);
      }
      px[o + 3] = Math.round((a / (ss * ss)) * 255);
    }
  }
  return encodePng(size, size, px);
}

// ---- PNG (RGBA, 8 bit, filter 0 per row) ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

export function encodePng(width, height, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0;
    rgba.copy(raw, y * (width * 4 + 1) + 1, y * width * 4, (y + 1) * width * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const big = render(512);
  writeFileSync(path.join(here, 'icon.png'), big);
  mkdirSync(path.join(root, 'main', 'resources'), { recursive: true });
  writeFileSync(path.join(root, 'main', 'resources', 'icon.png'), render(256));
  console.log('wrote build/icons/icon.png (512x512) and main/resources/icon.png (256x256)');
}
