import type { z } from 'zod';
import { z as zod } from 'zod';
import {
  AuditList,
  AuditVerify,
  type CreateAccessRequest,
  GrantList,
  GrantsToReview,
  GrantView,
  PolicyExplanation,
  RequestList,
  RequestOutcome,
  RequestView,
} from './access';
import { ApiError } from './common';
import { GatewayInfo } from './discovery';
import { Me } from './identity';
import { ReviewList, ReviewView } from './reviews';
import { type TargetInput, TargetList, TargetView } from './targets';

/**
 * The one HTTP client for the gateway, used by the renderer, the desktop main
 * process and the CLI. Every response is parsed with the protocol schema, so a
 * gateway/client mismatch surfaces as a clear error instead of undefined fields.
 */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayError';
  }
}

export interface GatewayClientOptions {
  baseUrl: string;
  /** Returns the bearer token, or undefined for cookie-authenticated browsers. */
  token?: () => string | undefined | Promise<string | undefined>;
  fetch?: typeof fetch;
}

const ApproveResult = zod.object({ request: RequestView, grant: GrantView.optional() });

function query(q: Record<string, string | number | undefined>): string {
  const entries = Object.entries(q).filter((e): e is [string, string | number] => e[1] !== undefined);
  return entries.length
    ? `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString()}`
    : '';
}

export function createGatewayClient(opts: GatewayClientOptions) {
  const base = opts.baseUrl.replace(/\/$/, '');
  const doFetch = opts.fetch ?? fetch;

  async function call<T>(
    method: string,
    path: string,
    schema: z.ZodType<T> | null,
    body?: unknown,
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = await opts.token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      // fetch says only "fetch failed"; what happened (refused, a certificate, DNS) is its cause.
      const cause = (err as { cause?: unknown }).cause;
      const reason = cause instanceof Error ? cause.message : (err as Error).message;
      throw new GatewayError(0, 'unreachable', `cannot reach the gateway at ${base}: ${reason}`, undefined, {
        cause: cause ?? err,
      });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new GatewayError(
        res.status,
        'bad_response',
        `gateway answered ${res.status} with a non-JSON body`,
      );
    }
    if (!res.ok) {
      const parsed = ApiError.safeParse(json);
      if (parsed.success) {
        const e = parsed.data.error;
        throw new GatewayError(res.status, e.code, e.message, e.requestId);
      }
      throw new GatewayError(res.status, 'http_error', `gateway answered ${res.status}`);
    }
    if (!schema) return undefined as T;
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new GatewayError(
        res.status,
        'bad_response',
        `unexpected response from ${path}: ${parsed.error.issues[0]?.message}`,
      );
    }
    return parsed.data;
  }

  return {
    info: () => call('GET', '/api/info', GatewayInfo),
    me: () => call('GET', '/api/me', Me),
    targets: () => call('GET', '/api/targets', TargetList).then((r) => r.targets),
    target: (id: string) => call('GET', `/api/targets/${encodeURIComponent(id)}`, TargetView),
    createTarget: (t: TargetInput) => call('POST', '/api/admin/targets', TargetView, t),
    putTarget: (t: TargetInput) =>
      call('PUT', `/api/admin/targets/${encodeURIComponent(t.id)}`, TargetView, t),
    deleteTarget: (id: string) => call('DELETE', `/api/admin/targets/${encodeURIComponent(id)}`, null),
    requestAccess: (body: CreateAccessRequest) => call('POST', '/api/requests', RequestOutcome, body),
    requests: (q: { scope?: 'mine' | 'inbox' | 'all'; status?: string } = {}) =>
      call('GET', `/api/requests${query(q)}`, RequestList).then((r) => r.requests),
    request: (id: string) => call('GET', `/api/requests/${encodeURIComponent(id)}`, RequestView),
    approve: (id: string, reason?: string) =>
      call(
        'POST',
        `/api/requests/${encodeURIComponent(id)}/approve`,
        ApproveResult,
        reason ? { reason } : {},
      ),
    deny: (id: string, reason: string) =>
      call('POST', `/api/requests/${encodeURIComponent(id)}/deny`, RequestView, { reason }),
    cancel: (id: string) => call('POST', `/api/requests/${encodeURIComponent(id)}/cancel`, RequestView, {}),
    grants: (q: { scope?: 'mine' | 'all'; status?: 'active' | 'revoked' } = {}) =>
      call('GET', `/api/grants${query(q)}`, GrantList).then((r) => r.grants),
    revoke: (id: string, reason: string) =>
      call('POST', `/api/grants/${encodeURIComponent(id)}/revoke`, GrantView, { reason }),
    /** Break-glass grants waiting for my review after the fact. */
    grantsToReview: () => call('GET', '/api/grants/to-review', GrantsToReview).then((r) => r.items),
    reviewGrant: (id: string, note: string) =>
      call('POST', `/api/grants/${encodeURIComponent(id)}/review`, GrantView, { note }),
    audit: (
      q: {
        since?: string;
        until?: string;
        kind?: string;
        actor?: string;
        target?: string;
        afterSeq?: number;
        limit?: number;
      } = {},
    ) => call('GET', `/api/audit${query(q)}`, AuditList).then((r) => r.events),
    verifyAudit: () => call('GET', '/api/audit/verify', AuditVerify),
    explain: (q: { target: string; user?: string; groups?: string }) =>
      call('GET', `/api/policy/explain${query(q)}`, PolicyExplanation),
    reviews: (q: { scope?: 'inbox' | 'mine' | 'all'; status?: string } = {}) =>
      call('GET', `/api/reviews${query(q)}`, ReviewList).then((r) => r.reviews),
    approveReview: (id: string, reason?: string) =>
      call('POST', `/api/reviews/${encodeURIComponent(id)}/approve`, ReviewView, reason ? { reason } : {}),
    denyReview: (id: string, reason: string) =>
      call('POST', `/api/reviews/${encodeURIComponent(id)}/deny`, ReviewView, { reason }),
    /** Escape hatch for endpoints added before the client learns them. */
    call,
  };
}
export type GatewayClient = ReturnType<typeof createGatewayClient>;
