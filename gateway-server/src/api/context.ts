import type { Role } from '@sallyport/protocol';
import type { Revoker } from '../access/revocation';
import type { AccessService } from '../access/service';
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
  /** Session recordings: written by the protocol layers, served to the app and CLI. */
  recordings?: import('../recording').RecordingCatalog;
  /** Held statements and commands waiting for an approver. */
  reviews?: import('../access/reviews').ReviewService;
  /** The access lifecycle; set once the gateway has wired it. */
  access?: AccessService;
  revoker?: Revoker;
  /** Live sessions per grant: terminal and SQL sessions register here so revocation closes them. */
  sessions?: import('../access/sessions').SessionRegistry;
  /** Masks every result value before it leaves the gateway (SQL results; hash key derived from the master key). */
  masker?: import('../masking').Masker;
  /** Sockets that authenticated: the gateway subscribes them to notifications. */
  onSocket?: (ws: import('ws').WebSocket, caller: Caller) => void;
  /** The OIDC issuer clients should sign in with (known once the provider is up). */
  issuer: () => string;
  log: Logger;
  /** Built renderer to serve as the web console, if present. */
  consoleDir?: string;
  /** The URL browsers reach the gateway at (known once it listens): the console's origin and redirect base. */
  publicUrl?: () => string;
  /** The web console's confidential OAuth client (the gateway signs in on the browser's behalf). */
  consoleClient?: { clientId: string; clientSecret: string };
  /** 32-byte key sealing the console's sign-in cookie, derived from the master key. */
  consoleKey?: Buffer;
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
