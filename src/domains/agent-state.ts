// Each domain's agent state, kept from libvirt's agent-lifecycle and lifecycle events. What is not known
// yet is read once from the live domain XML, where libvirt records the agent channel's state.
import type { AgentState, AgentStatus } from './vocabulary.js';
import type { LibvirtHosts } from '../libvirt/hosts.js';
import { AgentLifecycleState, LifecycleEvent } from '../libvirt/protocol.js';

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
  /** By domainKey(). */
  private readonly known = new Map<string, AgentStatus>();
  private readonly listeners: ((key: string, status: AgentStatus) => void)[] = [];

  constructor(hosts: LibvirtHosts) {
    hosts.on('agentLifecycle', ({ key, state }) => {
      const next: AgentState =
        state === AgentLifecycleState.CONNECTED ? 'connected' : state === AgentLifecycleState.DISCONNECTED ? 'disconnected' : 'unknown';
      this.set(key, { state: next, channel: true });
    });
    hosts.on('lifecycle', ({ key, event }) => {
      if (event === LifecycleEvent.STOPPED || event === LifecycleEvent.CRASHED) {
        this.set(key, { state: 'disconnected', channel: this.known.get(key)?.channel ?? null });
      } else if (event === LifecycleEvent.STARTED || event === LifecycleEvent.DEFINED || event === LifecycleEvent.UNDEFINED) {
        // The channel may have changed with the definition; read it again when asked.
        this.known.delete(key);
      }
    });
    // Events may have been missed while none were subscribed: forget everything of that host.
    hosts.on('eventsLost', ({ host }) => this.forgetHost(host));
    hosts.on('eventsSubscribed', ({ host }) => this.forgetHost(host));
  }

  private forgetHost(host: string): void {
    for (const key of this.known.keys()) if (key.startsWith(`${host}/`)) this.known.delete(key);
  }

  get(key: string): AgentStatus | undefined {
    return this.known.get(key);
  }

  set(key: string, status: AgentStatus): void {
    this.known.set(key, status);
    for (const l of this.listeners) l(key, status);
  }

  /** Domains whose agent is connected now, as far as events and reads have told. */
  get connectedCount(): number {
    let n = 0;
    for (const s of this.known.values()) if (s.state === 'connected') n++;
    return n;
  }

  /** Called on every change (per-domain caches such as guest-info refresh from it). */
  onChange(listener: (key: string, status: AgentStatus) => void): void {
    this.listeners.push(listener);
  }
}
