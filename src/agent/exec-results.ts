// Finished processes' results, kept after guest-exec-status has made the agent forget them (it reaps the
// process on the reply that says it exited), so that asking twice works. Bounded by count and age; keyed by
// domain UUID and pid, because pids repeat across domains and across a domain's restarts.
export interface ExecResultCacheOptions {
  maxEntries: number;
  ttlMs: number;
}

interface Entry<T> {
  value: T;
  expiresAt: number;
}

export class ExecResultCache<T> {
  // A Map iterates in insertion order: the first key is the oldest, which is the one to evict.
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly options: ExecResultCacheOptions,
    private readonly now: () => number = Date.now,
  ) {}

  private static key(uuid: string, pid: number): string {
    return `${uuid}/${pid}`;
  }

  get(uuid: string, pid: number): T | undefined {
    const key = ExecResultCache.key(uuid, pid);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(uuid: string, pid: number, value: T): void {
    if (this.options.maxEntries === 0 || this.options.ttlMs === 0) return;
    const key = ExecResultCache.key(uuid, pid);
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.options.ttlMs });
    this.prune();
  }

  forget(uuid: string, pid: number): void {
    this.entries.delete(ExecResultCache.key(uuid, pid));
  }

  /** Forgets one domain's results: after it restarts its pids mean other processes. */
  forgetDomain(uuid: string): void {
    const prefix = `${uuid}/`;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }

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
