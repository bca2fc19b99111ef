// A bounded map of (domain, number) to a value, with an age limit: what the gateway remembers about a domain's
// processes and handles (exec results after the agent reaped the process, who started a process, who opened a
// raw handle). Keyed by domain (domainKey: host and UUID) and number, because pids and handles repeat across
// domains and across a domain's restarts. Lazy: no timers to clean up.
export interface PerDomainCacheOptions {
  maxEntries: number;
  ttlMs: number;
}

interface Entry<T> {
  value: T;
  expiresAt: number;
}

export class PerDomainCache<T> {
  // A Map iterates in insertion order: the first key is the oldest, which is the one to evict.
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly options: PerDomainCacheOptions,
    private readonly now: () => number = Date.now,
  ) {}

  private static key(domain: string, pid: number): string {
    return `${domain}/${pid}`;
  }

  get(domain: string, pid: number): T | undefined {
    const key = PerDomainCache.key(domain, pid);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(domain: string, pid: number, value: T): void {
    if (this.options.maxEntries === 0 || this.options.ttlMs === 0) return;
    const key = PerDomainCache.key(domain, pid);
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.options.ttlMs });
    this.prune();
  }

  forget(domain: string, pid: number): void {
    this.entries.delete(PerDomainCache.key(domain, pid));
  }

  /** Forgets one domain's results: after it restarts its pids mean other processes. */
  forgetDomain(domain: string): void {
    const prefix = `${domain}/`;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  /** Entries kept (expired ones not yet dropped included): how the bound on them is observed; only the tests read it. */
  get size(): number {
    return this.entries.size;
  }

  /** Drops expired entries from the old end, then the oldest beyond the count. Lazy: no timers to clean up. */
  private prune(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size <= this.options.maxEntries) break;
      this.entries.delete(key);
    }
  }
}
