// Agent-socket domains have no libvirt to tell what happens to them; what can be known is whether the socket is
// there (QEMU creates it when the VM starts and removes it when it exits) and whether the agent answers on it (the
// channel's state, as the last command or resynchronisation left it). Both are looked at every interval (the
// config's agentSockets.rescanMs) and a change becomes an event: `started`/`stopped` with detail `socket-appeared`/
// `socket-removed`, and `agent` `connected`/`disconnected` with reason `channel`. The first look only learns.
import type { AgentSocketHost } from '../agent-socket/host.js';
import type { EventBus } from './bus.js';
import type { EventDomain } from './types.js';

interface Seen {
  running: boolean;
  agent: 'connected' | 'disconnected' | 'unknown';
}

export class SocketEvents {
  private readonly seen = new Map<string, Seen>();
  private timer: NodeJS.Timeout | null = null;
  private scanning = false;
  private first = true;

  constructor(
    private readonly sockets: AgentSocketHost,
    private readonly bus: EventBus,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    const tick = () => {
      void this.scan().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One look at every socket domain (exposed for tests); events for what changed since the last. */
  async scan(): Promise<void> {
    if (this.scanning) return;
    this.scanning = true;
    try {
      const refs = await this.sockets.list();
      const present = new Set<string>();
      for (const ref of refs) {
        present.add(ref.uuid);
        let now: Seen;
        try {
          const d = await this.sockets.describe(ref);
          now = { running: d.state === 'running', agent: d.agent.state };
        } catch {
          continue; // no longer configured between the listing and now
        }
        const before = this.seen.get(ref.uuid);
        this.seen.set(ref.uuid, now);
        if (this.first || !before) continue;
        this.report({ host: ref.host, name: ref.name, uuid: ref.uuid }, before, now);
      }
      for (const uuid of this.seen.keys()) if (!present.has(uuid)) this.seen.delete(uuid);
      this.first = false;
    } catch {
      // A directory that cannot be read now is tried again at the next look.
    } finally {
      this.scanning = false;
    }
  }

  private report(domain: EventDomain, before: Seen, now: Seen): void {
    if (!before.running && now.running) {
      this.bus.publish({ type: 'domain', domain, event: 'started', detail: 'socket-appeared', state: 'running' });
    }
    // Its agent is gone with the VM: say so first, as libvirt does before the stop.
    if (before.agent === 'connected' && (now.agent === 'disconnected' || !now.running)) {
      this.bus.publish({ type: 'agent', domain, state: 'disconnected', reason: 'channel' });
    }
    if (before.running && !now.running) {
      this.bus.publish({ type: 'domain', domain, event: 'stopped', detail: 'socket-removed', state: 'shutoff' });
    }
    if (before.agent !== 'connected' && now.agent === 'connected' && now.running) {
      this.bus.publish({ type: 'agent', domain, state: 'connected', reason: 'channel' });
    }
  }
}
