// Where domains live: a libvirt daemon, or the agent sockets (one host of their own). The directory finds, lists
// and describes domains through this one interface, whatever the backend.
import type { AgentSocketHost } from '../agent-socket/host.js';
import { backendError } from './backend-errors.js';
import { LibvirtError } from '../libvirt/errors.js';
import type { LibvirtHost } from '../libvirt/hosts.js';
import { VirErrorCode, isUuid, type DomainStateName } from '../libvirt/protocol.js';
import { agentStatusFromXml, type AgentStateTracker } from './agent-state.js';
import { EventBackedCache } from './event-backed-cache.js';
import type { NovaMetadataCache } from './nova-cache.js';
import type { NovaInstance } from './nova-metadata.js';
import { type AgentBackend, type AgentStatus, domainKey, type DomainRef, type SignalSource, signalOf } from './vocabulary.js';

export interface DomainInfo {
  host: string;
  backend: AgentBackend;
  name: string;
  uuid: string;
  /** libvirt's domain id; null while not running. */
  id: number | null;
  state: DomainStateName;
  agent: AgentStatus;
  /** What Nova wrote into the domain's metadata; absent when it has none (and for agent-socket domains, which have no XML). */
  nova?: NovaInstance;
}

export interface DomainSource {
  readonly name: string;
  readonly backend: AgentBackend;
  /** By name or UUID; rejects with the backend's own error when there is none (libvirt's NO_DOMAIN, the sockets' no_such_domain). */
  lookup(nameOrUuid: string, signal?: AbortSignal): Promise<DomainRef>;
  list(signal?: SignalSource): Promise<DomainRef[]>;
  describe(ref: DomainRef, signal?: SignalSource): Promise<DomainInfo>;
  /** The domain's Nova metadata, null when it has none; from what is kept when it is known. */
  nova(ref: DomainRef, signal?: SignalSource): Promise<NovaInstance | null>;
  /** The same when known without asking the backend; undefined when it must be read. */
  knownNova(ref: DomainRef): NovaInstance | null | undefined;
}

export class LibvirtSource implements DomainSource {
  readonly backend = 'libvirt' as const;
  /** The list and the states, kept while libvirt's events say nothing changed. */
  private readonly known: EventBackedCache;

  constructor(
    private readonly host: LibvirtHost,
    private readonly agents: AgentStateTracker,
    private readonly novaCache: NovaMetadataCache,
  ) {
    this.known = new EventBackedCache(host.pool);
  }

  get name(): string {
    return this.host.name;
  }

  async lookup(nameOrUuid: string, signal?: AbortSignal): Promise<DomainRef> {
    const { client } = this.host;
    if (!isUuid(nameOrUuid)) return client.lookupByName(nameOrUuid, signal);
    try {
      return await client.lookupByUuid(nameOrUuid, signal);
    } catch (err) {
      // A domain may be named like a UUID.
      if (err instanceof LibvirtError && err.code === VirErrorCode.NO_DOMAIN) return client.lookupByName(nameOrUuid, signal);
      throw err;
    }
  }

  list(signal?: SignalSource): Promise<DomainRef[]> {
    return this.known.domains(() => this.host.client.listAllDomains(signalOf(signal)));
  }

  async describe(ref: DomainRef, signal?: SignalSource): Promise<DomainInfo> {
    try {
      const state = await this.known.state(ref.uuid, async () => (await this.host.client.getState(ref, signalOf(signal))).state);
      const running = state === 'running' || state === 'paused' || state === 'blocked' || state === 'pmsuspended';
      const { agent, nova } = await this.fromXml(ref, running, signal);
      return {
        host: ref.host,
        backend: this.backend,
        name: ref.name,
        uuid: ref.uuid,
        id: ref.id >= 0 && running ? ref.id : null,
        state,
        agent,
        ...(nova ? { nova } : {}),
      };
    } catch (err) {
      throw backendError(err, { domain: ref.name });
    }
  }

  knownNova(ref: DomainRef): NovaInstance | null | undefined {
    return this.novaCache.get(ref);
  }

  async nova(ref: DomainRef, signal?: SignalSource): Promise<NovaInstance | null> {
    const known = this.knownNova(ref);
    if (known !== undefined) return known;
    const read = this.novaCache.reading(ref);
    try {
      return read.learn(await this.host.client.getXmlDesc(ref, signalOf(signal)));
    } catch (err) {
      throw backendError(err, { domain: ref.name });
    }
  }

  /**
   * The agent's status and the Nova metadata, both kept until an event says otherwise (agent-state.ts, nova-cache.ts):
   * the domain's XML is read when either is not known, once for both.
   */
  private async fromXml(
    ref: DomainRef,
    running: boolean,
    signal?: SignalSource,
  ): Promise<{ agent: AgentStatus; nova: NovaInstance | null }> {
    const key = domainKey(ref);
    const known = this.agents.get(key);
    // Kept until an event says otherwise: STARTED, DEFINED and UNDEFINED drop it, agent events update it.
    let agent: AgentStatus | null =
      known && known.channel !== null ? (running ? known : { state: 'disconnected', channel: known.channel }) : null;
    let nova = this.novaCache.get(ref);
    if (agent && nova !== undefined) return { agent, nova };
    const read = nova === undefined ? this.novaCache.reading(ref) : null;
    const xml = await this.host.client.getXmlDesc(ref, signalOf(signal));
    if (read) nova = read.learn(xml);
    if (!agent) {
      const fromXml = agentStatusFromXml(xml);
      // An inactive domain's XML carries no channel state: its agent cannot be connected.
      agent = running ? fromXml : { state: 'disconnected', channel: fromXml.channel };
      this.agents.set(key, agent);
    }
    return { agent, nova: nova ?? null };
  }
}

export class AgentSocketSource implements DomainSource {
  readonly backend = 'agent-socket' as const;

  constructor(private readonly sockets: AgentSocketHost) {}

  get name(): string {
    return this.sockets.name;
  }

  lookup(nameOrUuid: string): Promise<DomainRef> {
    return this.sockets.lookup(nameOrUuid);
  }

  list(): Promise<DomainRef[]> {
    return this.sockets.list();
  }

  async describe(ref: DomainRef): Promise<DomainInfo> {
    const { state, agent } = await this.sockets.describe(ref).catch((err: unknown) => {
      throw backendError(err, { domain: ref.name });
    });
    return { host: ref.host, backend: this.backend, name: ref.name, uuid: ref.uuid, id: null, state, agent };
  }

  /** A domain reached over its agent socket has no libvirt XML, so no Nova metadata. */
  async nova(): Promise<null> {
    return null;
  }

  knownNova(): null {
    return null;
  }
}
