// Guest file handles opened through the raw endpoint, and by whom. A raw guest-file-read/-write/-seek acts on
// a handle number, not a path: the gateway can hold such a call to the file policy of the identity only by
// knowing that this identity opened that handle (through a raw guest-file-open it checked against the policy).
// Bounded: past the count the oldest are forgotten, and a forgotten handle counts as unknown (see
// src/auth/raw-authorization.ts for what an unknown handle allows).
import { PerDomainCache } from '../core/per-domain-cache.js';

export interface RawHandle {
  identity: string;
  read: boolean;
  write: boolean;
}

/** Handles a gateway remembers at once, all domains together. */
const MAX_HANDLES = 10_000;
/** An agent keeps handles until closed or restarted; a day is longer than any raw session. */
const TTL_MS = 24 * 60 * 60 * 1000;

export class RawFileHandles {
  private readonly handles = new PerDomainCache<RawHandle>({ maxEntries: MAX_HANDLES, ttlMs: TTL_MS });

  add(domain: string, handle: number, owner: RawHandle): void {
    this.handles.set(domain, handle, owner);
  }

  get(domain: string, handle: number): RawHandle | undefined {
    return this.handles.get(domain, handle);
  }

  remove(domain: string, handle: number): void {
    this.handles.forget(domain, handle);
  }

  /** The agent restarted with the domain, or reconnected: its handles are gone. */
  forgetDomain(domain: string): void {
    this.handles.forgetDomain(domain);
  }
}
