// Node's error codes for a TLS certificate that could not be accepted, wherever the gateway or its
// CLI opens a verified connection (a PostgreSQL target, the gateway itself), so each place can say
// what to do about it instead of passing on a bare "unable to verify the first certificate".

const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);
const OUT_OF_DATE = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const WRONG_NAME = 'ERR_TLS_CERT_ALTNAME_INVALID';

export type CertificateProblem = 'untrusted' | 'out-of-date' | 'wrong-name';

/** What was wrong with the peer's certificate, looking through `cause` (fetch wraps its errors). */
export function certificateProblem(err: unknown): CertificateProblem | undefined {
  for (
    let e = err, depth = 0;
    e && typeof e === 'object' && depth < 4;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (UNTRUSTED.has(code)) return 'untrusted';
    if (OUT_OF_DATE.has(code)) return 'out-of-date';
    if (code === WRONG_NAME) return 'wrong-name';
  }
  return undefined;
}
