// Refusals of requests that prove no identity (401, or two Authorization headers), counted per client address.
// The per-identity rate limit (rate-limit.ts) runs after authentication, so without this a refusal cost the
// caller nothing and the gateway an audit line: thousands a second from one address. Past the limit the refusal
// becomes 429 with Retry-After, and only the first excess of a window is audited. A valid token is never
// refused for its address's refusals: nothing is counted or checked until authentication has failed.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { AuthorizationHeaderError } from './authorization-header.js';
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

function isRefusal(err: GatewayError): boolean {
  return err.code === 'unauthenticated' || err instanceof AuthorizationHeaderError;
}

/** Decorates requests with refusalsLimited, and returns the problem handler's rewrite that applies the limit. */
export function registerRefusalLimit(app: FastifyInstance, limits: Config['limits']['unauthenticated']): ErrorRewrite {
  app.decorateRequest('refusalsLimited', null);
  const { max, timeWindowMs } = limits;
  if (max === 0) return (_request, err) => err;
  const counter = new RefusalCounter(max, timeWindowMs);
  return (request: FastifyRequest, err: GatewayError) => {
    if (!isRefusal(err)) return err;
    const verdict = counter.count(request.ip);
    if (!verdict.limited) return err;
    const retryAfter = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    request.refusalsLimited = { first: verdict.first, max, timeWindowMs, until: new Date(Date.now() + verdict.retryAfterMs) };
    return new GatewayError('rate_limited', `more than ${max} refused requests from this address in ${timeWindowMs / 1000} s; retry in ${retryAfter} s with a valid token`, { retryAfter });
  };
}
