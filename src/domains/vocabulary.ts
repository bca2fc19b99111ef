// What every layer calls a domain, and imports from here alone: the wire client (src/libvirt), the agent sockets'
// host (src/agent-socket), the agent services and the routes. A leaf: it imports nothing, so that the layers below
// the domain directory (libvirt, agent sockets) can use these words without depending on the directory.

/** A domain found on one host: libvirt's (by its daemon's name in libvirt.hosts) or the agent sockets' own. */
export interface DomainRef {
  /** The libvirt host (config libvirt.hosts) the domain was found on, or agentSockets.host. */
  host: string;
  name: string;
  uuid: string;
  /** libvirt's id: -1 while the domain is not running. */
  id: number;
}

const collator = new Intl.Collator();

/**
 * The order every domain list is answered in (GET /domains, /addresses): by name, then host (null, a filter's name
 * that named no domain, first). A collator's compare is localeCompare's order at a fraction of its cost.
 */
export function byNameThenHost(a: { name: string; host: string | null }, b: { name: string; host: string | null }): number {
  return collator.compare(a.name, b.name) || collator.compare(a.host ?? '', b.host ?? '');
}

/**
 * The key of a domain in every per-domain table: its host and its UUID. The same UUID may well show up on two
 * hosts (a migrated domain, or one daemon reached over two transports).
 */
export function domainKey(dom: Pick<DomainRef, 'host' | 'uuid'>): string {
  return `${dom.host}/${dom.uuid}`;
}

/** How a domain's agent is reached: libvirt's virDomainQemuAgentCommand, or the agent's own socket. */
export type AgentBackend = 'libvirt' | 'agent-socket';

export type AgentState = 'connected' | 'disconnected' | 'unknown';

export interface AgentStatus {
  state: AgentState;
  /** Whether the domain has an org.qemu.guest_agent.0 channel; null when not known. */
  channel: boolean | null;
}

/**
 * A caller's abort signal, or a way to make it: a request's signal is made only when an answer needs libvirt (most
 * come from the caches, and making one per request was a visible part of a cached answer's CPU).
 */
export type SignalSource = AbortSignal | (() => AbortSignal) | undefined;

export function signalOf(source: SignalSource): AbortSignal | undefined {
  return typeof source === 'function' ? source() : source;
}
