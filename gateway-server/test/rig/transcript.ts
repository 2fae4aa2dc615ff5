import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/**
 * The leak check's evidence. Tests write every log line and every response body
 * they receive from a gateway here, and register every secret they give one.
 * After the whole suite, scripts/leak-scan.mjs fails the run if any registered
 * secret appears in any transcript. Without SALLYPORT_TRANSCRIPT_DIR nothing is written.
 */
const dir = process.env.SALLYPORT_TRANSCRIPT_DIR;
const file = dir ? path.join(dir, `transcript-${process.pid}-${Date.now()}.log`) : undefined;
if (dir) mkdirSync(dir, { recursive: true });

export function recordTranscript(kind: string, text: string): void {
  if (file) appendFileSync(file, `--- ${kind}\n${text}\n`);
}

export function registerSecret(secret: string | undefined): void {
  if (!dir || !secret) return;
  // Multi-line secrets (private keys) are registered line by line; short lines (headers) are skipped.
  for (const line of secret.split('\n')) {
    const s = line.trim();
    if (s.length >= 12 && !s.startsWith('-----')) appendFileSync(path.join(dir, 'secrets.txt'), `${s}\n`);
  }
}

/** A fetch that records every response body it returns. */
export const recordingFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  const body = await res.clone().text();
  recordTranscript(`response ${init?.method ?? 'GET'} ${String(input)} ${res.status}`, body);
  return res;
};
