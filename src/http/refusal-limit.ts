// Refusals counted: per client address those that prove no identity (401, two Authorization headers, a token in the URL), per
// identity those of a valid token (403). The per-identity rate limit (rate-limit.ts) runs after authorisation, so
// without this a refusal cost the caller nothing and the gateway an audit line (and, for a 403, a domain lookup):
// thousands a second. Past the limit the refusal becomes 429 with Retry-After, and only the first excess of a
// window is audited. An address's refusals never refuse a valid token; an identity past its own limit is
// answered 429 for every guarded request until its window ends, before any domain is looked up.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { PreAuthenticationRefusal } from '../auth/authorization-header.js';
import type { ErrorRewrite } from './problem.js';

/** Addresses counted at once; past it the oldest window goes. Bounds memory whatever the number of clients. */
export const MAX_COUNTED_ADDRESSES = 10_000;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when this request's refusal was turned into a 429 by the refusal limit. */
    refusalsLimited: RefusalsLimited | null;
  }
}

export interface RefusalsLimited {
  /** The first refusal of its window over the limit: the only one the audit records. */
  first: boolean;
  max: number;
  timeWindowMs: number;
  /** When the window ends and refusals from the address are answered (and audited) again. */
  until: Date;
}

export type RefusalVerdict = { limited: false } | { limited: true; first: boolean; retryAfterMs: number };

interface Window {
  start: number;
  count: number;
}

/**
 * Fixed windows per address in a Map kept in order of window start (a new window is re-inserted at the end), so
 * expired and, when full, oldest windows are dropped from the front as new ones come: no timer, nothing to stop.
 */
export class RefusalCounter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly maxAddresses = MAX_COUNTED_ADDRESSES,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get addresses(): number {
    return this.windows.size;
  }

  /** Whether this key is past the limit in its current window, without counting. */
  over(key: string): boolean {
    const w = this.windows.get(key);
    return w !== undefined && this.now() - w.start < this.windowMs && w.count > this.max;
  }

  count(address: string): RefusalVerdict {
    const now = this.now();
    let w = this.windows.get(address);
    if (w && now - w.start >= this.windowMs) {
      this.windows.delete(address);
      w = undefined;
    }
    if (!w) {
      this.dropStale(now);
      w = { start: now, count: 0 };
      this.windows.set(address, w);
    }
    w.count++;
    if (w.count <= this.max) return { limited: false };
    return { limited: true, first: w.count === this.max + 1, retryAfterMs: w.start + this.windowMs - now };
  }

  /** Drops expired windows from the front, and the oldest ones while the table is full. */
  private dropStale(now: number): void {
    for (const [address, w] of this.windows) {
      if (this.windows.size < this.maxAddresses && now - w.start < this.windowMs) return;
      this.windows.delete(address);
    }
  }
}

/**
 * What a refusal is counted against: the client address when no identity was proved (401, two Authorization
 * headers), the identity when it was and was refused (403 forbidden: a scope it lacks, a domain it may not
 * touch). A 403 costs a domain lookup and an audit line, and the per-identity rate limit counts only requests
 * that got past authorisation, so without this a valid low-privilege token could make refusals without end.
 */
function refusalKey(request: FastifyRequest, err: GatewayError): string | null {
  if (err.code === 'unauthenticated' || err instanceof PreAuthenticationRefusal) return `address:${request.ip}`;
  if (err.code === 'forbidden' && request.identity) return `identity:${request.identity.name}`;
  return null;
}

export interface RefusalLimit {
  /** The problem handler's rewrite that applies the limit. */
  rewrite: ErrorRewrite;
  /** Throws 429 when the identity is past its refusals of this window: checked before its domain is looked up. */
  checkIdentity(request: FastifyRequest): void;
}

/** Decorates requests with refusalsLimited; answers the rewrite and the early check. */
export function registerRefusalLimit(app: FastifyInstance, limits: Config['limits']['unauthenticated']): RefusalLimit {
  app.decorateRequest('refusalsLimited', null);
  const { max, timeWindowMs } = limits;
  if (max === 0) return { rewrite: (_request, err) => err, checkIdentity: () => {} };
  const counter = new RefusalCounter(max, timeWindowMs);
  const rewrite = (request: FastifyRequest, err: GatewayError) => {
    const key = refusalKey(request, err);
    if (key === null) return err;
    const verdict = counter.count(key);
    if (!verdict.limited) return err;
    const retryAfter = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    request.refusalsLimited = { first: verdict.first, max, timeWindowMs, until: new Date(Date.now() + verdict.retryAfterMs) };
    const who = key.startsWith('identity:') ? 'by this identity' : 'from this address';
    return new GatewayError(
      'rate_limited',
      `more than ${max} refused requests ${who} in ${timeWindowMs / 1000} s; retry in ${retryAfter} s`,
      { retryAfter },
    );
  };
  const checkIdentity = (request: FastifyRequest) => {
    // Counted like the refusal it stands for, so the audit still writes one line for the window.
    if (request.identity && counter.over(`identity:${request.identity.name}`)) {
      throw new GatewayError('forbidden', `identity '${request.identity.name}' has been refused too often`);
    }
  };
  return { rewrite, checkIdentity };
}
