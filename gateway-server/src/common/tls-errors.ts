// Node's error codes for a TLS certificate that could not be accepted, wherever the gateway or its
// CLI opens a verified connection (a PostgreSQL target, the gateway itself), so each place can say
// what to do about it instead of passing on a bare "unable to verify the first certificate".

const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);
const OUT_OF_DATE = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
/** A chain that reaches a trusted CA but cannot be used as it is. */
const UNFIT = new Set([
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'CERT_CHAIN_TOO_LONG',
  'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
]);
const REVOKED = 'CERT_REVOKED';
const WRONG_NAME = 'ERR_TLS_CERT_ALTNAME_INVALID';

export type CertificateProblem = 'untrusted' | 'out-of-date' | 'wrong-name' | 'unfit' | 'revoked';

/** What each problem means, in words that fit after "the … certificate". */
export const CERTIFICATE_PROBLEM_TEXT: Record<
  Exclude<CertificateProblem, 'untrusted' | 'wrong-name'>,
  string
> = {
  'out-of-date': 'is outside its validity period',
  unfit:
    'chain cannot be used: a CA in it is not marked as a CA, the certificate is not for TLS servers, the chain is too long, or a signature does not check out',
  revoked: 'has been revoked',
};

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
    if (UNFIT.has(code)) return 'unfit';
    if (code === REVOKED) return 'revoked';
  }
  return undefined;
}
