import { CERTIFICATE_PROBLEM_TEXT, certificateProblem } from '../common/tls-errors';

/**
 * What to do when the gateway's own certificate was refused, appended to the CLI's message. Node
 * reads extra CAs from NODE_EXTRA_CA_CERTS at start-up, for fetch and WebSockets alike, so that is
 * the one switch a private CA needs (Sallyport has no "skip verification" switch of its own, on purpose).
 */
export function gatewayTlsHint(err: unknown): string {
  const problem = certificateProblem(err);
  switch (problem) {
    case undefined:
      return '';
    case 'untrusted':
      return " (the gateway's certificate is not from a CA Node trusts here; for a private CA, point NODE_EXTRA_CA_CERTS at its PEM file)";
    case 'wrong-name':
      return " (the gateway's certificate does not carry this host name: use a name it was issued for)";
    case 'out-of-date':
    case 'unfit':
    case 'revoked':
      return ` (the gateway's certificate ${CERTIFICATE_PROBLEM_TEXT[problem]})`;
  }
}

/** fetch reports every network failure as "fetch failed"; the reason is its cause. */
export function networkErrorText(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  return err.message === 'fetch failed' && cause instanceof Error ? cause.message : err.message;
}
