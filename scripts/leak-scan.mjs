#!/usr/bin/env node
// Fails when any secret a test handed to a gateway (target passwords, private keys,
// master keys) shows up in anything a gateway said: log lines, API responses,
// WebSocket frames, recordings. Tests write both lists (gateway-server/test/rig/transcript.ts).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
if (!dir || !existsSync(dir)) {
  console.error('leak-scan: no transcript directory given');
  process.exit(2);
}
const secretsFile = path.join(dir, 'secrets.txt');
const secrets = existsSync(secretsFile)
  ? [...new Set(readFileSync(secretsFile, 'utf8').split('\n').filter(Boolean))]
  : [];
const files = readdirSync(dir).filter((f) => f.startsWith('transcript-'));
let bytes = 0;
const leaks = [];
for (const f of files) {
  const text = readFileSync(path.join(dir, f), 'utf8');
  bytes += text.length;
  for (const s of secrets)
    if (text.includes(s)) leaks.push({ file: f, secret: `${s.slice(0, 4)}…(${s.length} chars)` });
}
// A scan of nothing proves nothing: a run that produced no transcripts or registered no secrets fails.
if (files.length === 0 || secrets.length === 0) {
  console.error(
    `leak-scan: nothing to scan (${files.length} transcripts, ${secrets.length} secrets): the rig did not record`,
  );
  process.exit(1);
}
if (leaks.length > 0) {
  console.error(`leak-scan: ${leaks.length} credential leak(s):`);
  for (const l of leaks.slice(0, 20)) console.error(`  ${l.secret} in ${l.file}`);
  process.exit(1);
}
console.log(
  `leak-scan: ${secrets.length} secrets, ${files.length} transcripts, ${(bytes / 1e6).toFixed(1)} MB: no leaks`,
);
