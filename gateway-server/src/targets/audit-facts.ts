// What the ledger says about a target when it is created or changed: where it points and how the
// gateway checks who answers there (TLS mode, the CA bundle's SHA-256, the SSH host key's
// fingerprint), so that turning verification down or swapping a CA leaves a trace. Never the
// credential (only whether one was given) and never the CA bundle itself.
import { canonicalJson } from '../audit/canonical';
import { hostKeyFingerprint } from './host-key';
import type { TargetRecord } from './repository';

export interface TargetFacts {
  kind: TargetRecord['kind'];
  host: string;
  port: number;
  user: string;
  labels: Record<string, string>;
  database?: string | null;
  tls?: string | null;
  tlsCaSha256?: string | null;
  hostKeyFingerprint?: string | null;
}

export function targetFacts(t: TargetRecord): TargetFacts {
  const base = { kind: t.kind, host: t.host, port: t.port, user: t.user_name, labels: t.labels };
  if (t.kind === 'postgres') {
    return { ...base, database: t.database_name, tls: t.tls, tlsCaSha256: t.tls_ca_sha256 };
  }
  return { ...base, hostKeyFingerprint: t.host_key ? hostKeyFingerprint(t.host_key) : null };
}

/** The names of the facts that differ, in a stable order. */
export function changedFacts(before: TargetFacts, after: TargetFacts): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const value = (f: TargetFacts, k: string) =>
    canonicalJson((f as unknown as Record<string, unknown>)[k] ?? null);
  return keys.filter((k) => value(before, k) !== value(after, k));
}
