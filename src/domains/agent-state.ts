// Each domain's agent state, kept from libvirt's agent-lifecycle and lifecycle events. What is not known
// yet is read once from the live domain XML, where libvirt records the agent channel's state.
import type { LibvirtPool } from '../libvirt/pool.js';
import { AgentLifecycleState, LifecycleEvent, uuidToString } from '../libvirt/protocol.js';

export type AgentState = 'connected' | 'disconnected' | 'unknown';

export interface AgentStatus {
  state: AgentState;
  /** Whether the domain has an org.qemu.guest_agent.0 channel; null when not known. */
  channel: boolean | null;
}

const AGENT_TARGET_RE = /<target\b[^>]*\bname=(['"])org\.qemu\.guest_agent\.0\1[^>]*>/;
const STATE_ATTR_RE = /\bstate=(['"])(connected|disconnected)\1/;

/** Reads the agent channel out of a domain's live XML. */
export function agentStatusFromXml(xml: string): AgentStatus {
  const target = AGENT_TARGET_RE.exec(xml);
  if (!target) return { state: 'disconnected', channel: false };
  const state = STATE_ATTR_RE.exec(target[0])?.[2];
  return { state: state === 'connected' ? 'connected' : state === 'disconnected' ? 'disconnected' : 'unknown', channel: true };
}

export class AgentStateTracker {
  private readonly known = new Map<string, AgentStatus>();
  private readonly listeners: ((uuid: string, status: AgentStatus) => void)[] = [];

  constructor(pool: LibvirtPool) {
    pool.on('agentLifecycle', ({ dom, state }) => {
      const uuid = uuidToString(dom.uuid);
      const next: AgentState = state === AgentLifecycleState.CONNECTED ? 'connected' : state === AgentLifecycleState.DISCONNECTED ? 'disconnected' : 'unknown';
      this.set(uuid, { state: next, channel: true });
    });
    pool.on('lifecycle', ({ dom, event }) => {
      const uuid = uuidToString(dom.uuid);
      if (event === LifecycleEvent.STOPPED || event === LifecycleEvent.CRASHED) {
        this.set(uuid, { state: 'disconnected', channel: this.known.get(uuid)?.channel ?? null });
      } else if (event === LifecycleEvent.STARTED || event === LifecycleEvent.DEFINED || event === LifecycleEvent.UNDEFINED) {
        // The channel may have changed with the definition; read it again when asked.
        this.known.delete(uuid);
      }
    });
    // Events may have been missed while none were subscribed: forget everything.
    pool.on('eventsLost', () => this.known.clear());
    pool.on('eventsSubscribed', () => this.known.clear());
  }

  get(uuid: string): AgentStatus | undefined {
    return this.known.get(uuid);
  }

  set(uuid: string, status: AgentStatus): void {
    this.known.set(uuid, status);
    for (const l of this.listeners) l(uuid, status);
  }

  /** Called on every change; later issues refresh per-domain caches (guest-info) from it. */
  onChange(listener: (uuid: string, status: AgentStatus) => void): void {
    this.listeners.push(listener);
  }
}
