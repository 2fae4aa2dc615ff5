// Certificate refusals as Node reports them: directly on a socket's error (ws, pg) or as the cause
// of fetch's "fetch failed". Each gets the hint for its kind; anything else gets none.
import { describe, expect, it } from 'vitest';
import { gatewayTlsHint, networkErrorText } from '../../src/cli/tls-hint';
import { certificateProblem } from '../../src/common/tls-errors';

const coded = (message: string, code: string) => Object.assign(new Error(message), { code });
const fetchFailed = (cause: Error) => new TypeError('fetch failed', { cause });

describe('certificate problems', () => {
  it('are found on the error itself or in its causes', () => {
    const leaf = coded('unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(certificateProblem(leaf)).toBe('untrusted');
    expect(certificateProblem(fetchFailed(leaf))).toBe('untrusted');
    expect(certificateProblem(coded('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'))).toBe(
      'untrusted',
    );
    expect(
      certificateProblem(
        coded("Hostname/IP does not match certificate's altnames", 'ERR_TLS_CERT_ALTNAME_INVALID'),
      ),
    ).toBe('wrong-name');
    expect(certificateProblem(fetchFailed(coded('certificate has expired', 'CERT_HAS_EXPIRED')))).toBe(
      'out-of-date',
    );
    expect(
      certificateProblem(fetchFailed(coded('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'))),
    ).toBeUndefined();
    expect(certificateProblem(coded('certificate not trusted', 'CERT_UNTRUSTED'))).toBe('untrusted');
    expect(certificateProblem(coded('invalid CA certificate', 'INVALID_CA'))).toBe('unfit');
    expect(certificateProblem(fetchFailed(coded('unsupported certificate purpose', 'INVALID_PURPOSE')))).toBe(
      'unfit',
    );
    expect(certificateProblem(coded('certificate revoked', 'CERT_REVOKED'))).toBe('revoked');
    expect(certificateProblem(null)).toBeUndefined();
    expect(certificateProblem('CERT_HAS_EXPIRED')).toBeUndefined();
  });

  it('give the CLI a hint of what to do, and fetch failures their reason', () => {
    const leaf = fetchFailed(
      coded('unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
    );
    expect(gatewayTlsHint(leaf)).toContain('point NODE_EXTRA_CA_CERTS at its PEM file');
    expect(gatewayTlsHint(coded('x', 'ERR_TLS_CERT_ALTNAME_INVALID'))).toContain(
      'does not carry this host name',
    );
    expect(gatewayTlsHint(coded('x', 'CERT_NOT_YET_VALID'))).toContain('validity period');
    expect(gatewayTlsHint(coded('x', 'INVALID_CA'))).toContain('a CA in it is not marked as a CA');
    expect(gatewayTlsHint(fetchFailed(coded('x', 'CERT_REVOKED')))).toBe(
      " (the gateway's certificate has been revoked)",
    );
    expect(gatewayTlsHint(coded('connect ECONNREFUSED', 'ECONNREFUSED'))).toBe('');
    expect(networkErrorText(leaf)).toBe('unable to verify the first certificate');
    expect(networkErrorText(new Error('something else'))).toBe('something else');
  });
});
