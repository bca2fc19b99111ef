// Finds domains by name or UUID and describes them. Lookups are cached briefly; libvirt's lifecycle events
// drop an entry as soon as its domain is defined, undefined, started or stopped.
import { mapLibvirtError } from '../agent/error-mapping.js';
import { GatewayError } from '../errors.js';
import type { DomainRef, LibvirtClient } from '../libvirt/client.js';
import { LibvirtError } from '../libvirt/errors.js';
import type { LibvirtPool } from '../libvirt/pool.js';
import { VirErrorCode, isUuid, uuidToString, type DomainStateName } from '../libvirt/protocol.js';
import { agentStatusFromXml, type AgentStateTracker, type AgentStatus } from './agent-state.js';

export interface DomainInfo {
  name: string;
  uuid: string;
  /** libvirt's domain id; null while not running. */
  id: number | null;
  state: DomainStateName;
  agent: AgentStatus;
}

interface CacheEntry {
  ref: DomainRef;
  expires: number;
}

export const DOMAIN_NAME_MAX = 1024;

export class DomainDirectory {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(
    private readonly libvirt: LibvirtClient,
    pool: LibvirtPool,
    private readonly agents: AgentStateTracker,
    private readonly cacheTtlMs: number,
  ) {
    pool.on('lifecycle', ({ dom }) => this.forget(uuidToString(dom.uuid)));
    pool.on('eventsLost', () => this.cache.clear());
  }

  private forget(uuid: string): void {
    for (const [key, entry] of this.cache) if (entry.ref.uuid === uuid) this.cache.delete(key);
  }

  /** The domain a path segment names: a UUID (any case, dashes optional) or a name. */
  async resolve(nameOrUuid: string, signal?: AbortSignal): Promise<DomainRef> {
    const key = isUuid(nameOrUuid) ? nameOrUuid.toLowerCase().replace(/-/g, '') : `name:${nameOrUuid}`;
    const hit = this.cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.ref;
    let ref: DomainRef;
    try {
      ref = await this.lookup(nameOrUuid, signal);
    } catch (err) {
      if (err instanceof LibvirtError && err.code === VirErrorCode.NO_DOMAIN) {
        throw new GatewayError('domain_not_found', `no domain named or with UUID '${nameOrUuid}'`, { domain: nameOrUuid, libvirtCode: err.code });
      }
      throw mapLibvirtError(err, { domain: nameOrUuid });
    }
    if (this.cacheTtlMs > 0) this.cache.set(key, { ref, expires: Date.now() + this.cacheTtlMs });
    return ref;
  }

  private async lookup(nameOrUuid: string, signal?: AbortSignal): Promise<DomainRef> {
    if (!isUuid(nameOrUuid)) return this.libvirt.lookupByName(nameOrUuid, signal);
    try {
      return await this.libvirt.lookupByUuid(nameOrUuid, signal);
    } catch (err) {
      // A domain may be named like a UUID.
      if (err instanceof LibvirtError && err.code === VirErrorCode.NO_DOMAIN) return this.libvirt.lookupByName(nameOrUuid, signal);
      throw err;
    }
  }

  async describe(ref: DomainRef, signal?: AbortSignal): Promise<DomainInfo> {
    try {
      const { state } = await this.libvirt.getState(ref, signal);
      const running = state === 'running' || state === 'paused' || state === 'blocked' || state === 'pmsuspended';
      const agent = await this.agentStatus(ref, running, signal);
      return { name: ref.name, uuid: ref.uuid, id: ref.id >= 0 && running ? ref.id : null, state, agent };
    } catch (err) {
      throw mapLibvirtError(err, { domain: ref.name });
    }
  }

  private async agentStatus(ref: DomainRef, running: boolean, signal?: AbortSignal): Promise<AgentStatus> {
    const known = this.agents.get(ref.uuid);
    // Kept until an event says otherwise: STARTED, DEFINED and UNDEFINED drop it, agent events update it.
    if (known && known.channel !== null) return running ? known : { state: 'disconnected', channel: known.channel };
    const fromXml = agentStatusFromXml(await this.libvirt.getXmlDesc(ref, signal));
    // An inactive domain's XML carries no channel state: its agent cannot be connected.
    const status: AgentStatus = running ? fromXml : { state: 'disconnected', channel: fromXml.channel };
    this.agents.set(ref.uuid, status);
    return status;
  }

  async list(signal?: AbortSignal): Promise<DomainInfo[]> {
    let refs: DomainRef[];
    try {
      refs = await this.libvirt.listAllDomains(signal);
    } catch (err) {
      throw mapLibvirtError(err);
    }
    const described = await Promise.allSettled(refs.map((ref) => this.describe(ref, signal)));
    const out: DomainInfo[] = [];
    for (const result of described) {
      if (result.status === 'fulfilled') out.push(result.value);
      // A domain undefined between the list and its description is simply gone.
      else if (!(result.reason instanceof GatewayError && result.reason.code === 'domain_not_found')) throw result.reason;
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }
}
