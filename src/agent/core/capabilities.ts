import type { AgentStatus } from '../../domains/vocabulary.js';
// What each domain's agent offers (guest-info), cached per domain and dropped whenever its agent or the
// domain changes state, so that a command the agent lacks is refused (501) without being sent.

export interface AgentCommandInfo {
  enabled: boolean;
  successResponse: boolean;
}

export interface AgentCapabilities {
  version: string;
  commands: ReadonlyMap<string, AgentCommandInfo>;
}

export class CapabilityCache {
  private readonly entries = new Map<string, Promise<AgentCapabilities>>();

  /** The cached capabilities, or fetch() once for everybody who asks meanwhile. */
  get(uuid: string, fetch: () => Promise<AgentCapabilities>): Promise<AgentCapabilities> {
    const hit = this.entries.get(uuid);
    if (hit) return hit;
    const pending = fetch();
    this.entries.set(uuid, pending);
    // A failed fetch is not remembered: the next caller tries again.
    pending.catch(() => {
      if (this.entries.get(uuid) === pending) this.entries.delete(uuid);
    });
    return pending;
  }

  /** Stores what a fresh guest-info said (AgentService.refreshCapabilities). */
  set(uuid: string, caps: AgentCapabilities): void {
    this.entries.set(uuid, Promise.resolve(caps));
  }

  invalidate(uuid: string): void {
    this.entries.delete(uuid);
  }

  clear(): void {
    this.entries.clear();
  }

  /** Wired to agent state changes: a (re)connected agent may be another version. */
  onAgentChange(uuid: string, _status: AgentStatus): void {
    this.invalidate(uuid);
  }
}
