import type { Role } from '@sallyport/protocol';
import type { Ledger } from '../audit';
import type { GatewayConfig } from '../config/schema';
import type { Principal, TokenVerifier } from '../identity';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import type { Store } from '../store/db';
import type { TargetRepository } from '../targets/repository';

/** What the API layer is handed. Routes stay thin: they validate, call these, and shape replies. */
export interface ApiContext {
  config: GatewayConfig;
  store: Store;
  targets: TargetRepository;
  ledger: Ledger;
  /** Null until the identity provider has been discovered: requests then fail closed with 401. */
  verifier: () => TokenVerifier | null;
  metrics: Metrics;
  /** The OIDC issuer clients should sign in with (known once the provider is up). */
  issuer: () => string;
  log: Logger;
  /** Built renderer to serve as the web console, if present. */
  consoleDir?: string;
  /** Extra readiness checks (e.g. identity discovery), name → error or null. */
  readiness?: () => Promise<Record<string, string | null>>;
}

export interface Caller extends Principal {
  roles: Role[];
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}
