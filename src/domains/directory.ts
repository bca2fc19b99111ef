// src/domains: a domain, wherever it lives. vocabulary.ts holds the words every layer shares (DomainRef, domainKey,
// the backend and agent state) and imports nothing; sources.ts is the backends domains live on (a libvirt daemon,
// the agent sockets); backend-errors.ts turns what either backend raises into the gateway's errors, in one place;
// agent-state.ts follows each libvirt domain's agent from libvirt's events; this file looks domains up.
//
// Finds domains by name or UUID, on one host or across several, and describes them. Lookups are cached briefly;
// libvirt's lifecycle events drop an entry as soon as its domain is defined, undefined, started or stopped. A
// domain's description includes what OpenStack Nova wrote into its metadata (nova-metadata.ts, kept by
// nova-cache.ts), which nova() and novaProjectId() also answer alone, for filters and authorisation.
//
// A domain id in a URL is a name or a UUID, optionally qualified by its host as host:name (host:uuid). An
// unqualified id is looked up on every host (libvirt's, and the agent sockets' own): found on one, that is the
// domain; on several, 409 domain_ambiguous with the qualified candidates; on none while a host is unreachable,
// 503 host_unavailable (it may be there).
import type { Logger } from 'pino';
import { AgentSocketError } from '../agent-socket/errors.js';
import type { AgentSocketHost } from '../agent-socket/host.js';
import { backendError } from './backend-errors.js';
import { GatewayError } from '../errors.js';
import { LibvirtError } from '../libvirt/errors.js';
import type { LibvirtHosts } from '../libvirt/hosts.js';
import { VirErrorCode, isUuid } from '../libvirt/protocol.js';
import type { AgentStateTracker } from './agent-state.js';
import { NovaMetadataCache } from './nova-cache.js';
import type { NovaInstance } from './nova-metadata.js';
import { AgentSocketSource, LibvirtSource, type DomainInfo, type DomainSource } from './sources.js';
import { byNameThenHost, domainKey, type DomainRef, type SignalSource, signalOf } from './vocabulary.js';

/** A host that could not be listed, and why. */
export interface HostFailure {
  host: string;
  code: string;
  detail: string;
}

interface CacheEntry {
  ref: DomainRef;
  expires: number;
}

/** How answers name a domain so that the caller can come back to exactly it: host:name with several hosts. */
export function qualifiedId(dom: Pick<DomainRef, 'host' | 'name'>): string {
  return `${dom.host}:${dom.name}`;
}

export class DomainDirectory {
  private readonly cache = new Map<string, CacheEntry>();

  /** Every host a domain may be on: the libvirt hosts, then the agent sockets' host. */
  private readonly sources: DomainSource[];
  private readonly novaCache: NovaMetadataCache;

  constructor(
    hosts: LibvirtHosts,
    agents: AgentStateTracker,
    private readonly cacheTtlMs: number,
    sockets: AgentSocketHost | null,
    log: Logger,
  ) {
    const nova = new NovaMetadataCache(hosts, log.child({ component: 'nova' }));
    this.novaCache = nova;
    this.sources = [...hosts.list.map((h) => new LibvirtSource(h, agents, nova)), ...(sockets ? [new AgentSocketSource(sockets)] : [])];
    hosts.on('lifecycle', ({ key, dom }) => this.forget(key, dom.name));
    hosts.on('eventsLost', () => this.cache.clear());
  }

  /** A domain defined, undefined, started or stopped on any host may change what its name resolves to. */
  private forget(key: string, name: string): void {
    for (const [k, entry] of this.cache) if (domainKey(entry.ref) === key || entry.ref.name === name) this.cache.delete(k);
  }

  /** How a URL names exactly this domain: its UUID, qualified by its host when several are configured. */
  pathId(ref: DomainRef): string {
    return this.several ? `${ref.host}:${ref.uuid}` : ref.uuid;
  }

  /** More than one host: answers then name domains as host:name so that a caller can come back to the same one. */
  get several(): boolean {
    return this.sources.length > 1;
  }

  /** A domain id split into its host (when qualified as host:rest) and the name or UUID. */
  splitId(id: string): { host: string | undefined; rest: string } {
    const { host, rest } = this.parse(id);
    return { host: host?.name, rest };
  }

  /** host:rest when the part before the first ':' names a configured host; a plain name or UUID otherwise. */
  private parse(id: string): { host: DomainSource | undefined; rest: string } {
    const colon = id.indexOf(':');
    if (colon > 0) {
      const host = this.sources.find((s) => s.name === id.slice(0, colon));
      if (host) return { host, rest: id.slice(colon + 1) };
    }
    return { host: undefined, rest: id };
  }

  /** The domain a path segment names: a name or a UUID (any case, dashes optional), optionally as host:id. */
  async resolve(id: string, signalSource?: SignalSource): Promise<DomainRef> {
    const { host, rest } = this.parse(id);
    const cacheKey = `${host?.name ?? '*'}|${isUuid(rest) ? rest.toLowerCase().replace(/-/g, '') : `name:${rest}`}`;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.expires > Date.now()) return hit.ref;
    if (!host && this.sources.length === 0)
      throw new GatewayError('domain_not_found', `no domain named or with UUID '${id}': no hosts are configured`, { domain: id });
    const signal = signalOf(signalSource);
    const ref =
      host || this.sources.length === 1
        ? await this.resolveOn(host ?? this.sources[0]!, rest, id, signal)
        : await this.resolveAcross(rest, id, signal);
    if (this.cacheTtlMs > 0) this.cache.set(cacheKey, { ref, expires: Date.now() + this.cacheTtlMs });
    return ref;
  }

  private async resolveOn(host: DomainSource, rest: string, id: string, signal?: AbortSignal): Promise<DomainRef> {
    try {
      return await host.lookup(rest, signal);
    } catch (err) {
      throw this.lookupError(err, host, id);
    }
  }

  private async resolveAcross(rest: string, id: string, signal?: AbortSignal): Promise<DomainRef> {
    const results = await Promise.allSettled(this.sources.map((h) => h.lookup(rest, signal)));
    const found: DomainRef[] = [];
    const failures: GatewayError[] = [];
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') found.push(r.value);
      else if (!isNotFound(r.reason)) failures.push(this.lookupError(r.reason, this.sources[i]!, id));
    }
    if (found.length === 1) return found[0]!;
    if (found.length > 1) {
      const candidates = found.map(qualifiedId);
      throw new GatewayError(
        'domain_ambiguous',
        `'${id}' names a domain on ${found.length} hosts (${found.map((f) => f.host).join(', ')}): ask for one of ${candidates.join(', ')}`,
        { domain: id, candidates },
      );
    }
    if (failures.length) throw failures[0]!;
    throw new GatewayError('domain_not_found', `no domain named or with UUID '${id}' on any host`, {
      domain: id,
      libvirtCode: VirErrorCode.NO_DOMAIN,
    });
  }

  private lookupError(err: unknown, host: DomainSource, id: string): GatewayError {
    if (isNotFound(err)) {
      const where = this.several ? ` on host ${host.name}` : '';
      return new GatewayError('domain_not_found', `no domain named or with UUID '${id}'${where}`, {
        domain: id,
        ...(err instanceof LibvirtError ? { libvirtCode: err.code } : {}),
      });
    }
    const mapped = backendError(err, { domain: id });
    // With several hosts, say which one is down: the others still answer.
    if (this.several && mapped.code === 'libvirt_unavailable') {
      return new GatewayError('host_unavailable', `libvirt host ${host.name} is not reachable: ${mapped.message}`, {
        ...mapped.extras,
        host: host.name,
      });
    }
    return mapped;
  }

  private sourceOf(ref: DomainRef): DomainSource {
    const source = this.sources.find((s) => s.name === ref.host);
    if (!source) throw new GatewayError('host_not_found', `no host named '${ref.host}'`, { domain: ref.name, host: ref.host });
    return source;
  }

  async describe(ref: DomainRef, signal?: SignalSource): Promise<DomainInfo> {
    return this.sourceOf(ref).describe(ref, signal);
  }

  /**
   * What Nova wrote into the domain's libvirt metadata (src/domains/nova-metadata.ts); null when it has none (an
   * agent-socket domain never has). Kept per domain until libvirt reports that its definition or its metadata
   * changed (nova-cache.ts), so this asks libvirt nothing for a domain whose metadata is known; otherwise one read
   * of its XML. Rejects with the backend's GatewayError (domain_not_found, libvirt_unavailable...) when the XML
   * cannot be read.
   */
  async nova(ref: DomainRef, signal?: SignalSource): Promise<NovaInstance | null> {
    return this.sourceOf(ref).nova(ref, signal);
  }

  /**
   * The Keystone project id Nova recorded as the domain's owner, or null when the domain has no Nova metadata.
   * For authorisation (a project-scoped token reaches only its project's domains): as cheap as nova() (no libvirt
   * round trip while the metadata is known). null must be taken as "belongs to no project", never as "any": a
   * domain without Nova metadata, or with metadata that could not be read as Nova's, matches no project.
   */
  async novaProjectId(ref: DomainRef, signal?: SignalSource): Promise<string | null> {
    return (await this.nova(ref, signal))?.project.id ?? null;
  }

  /** The domain's Nova metadata when it is known without asking libvirt (null: none), undefined when it must be read. */
  knownNova(ref: DomainRef): NovaInstance | null | undefined {
    return this.sources.find((s) => s.name === ref.host)?.knownNova(ref);
  }

  /**
   * For the events of a domain that may be gone (GET /events): its project now, or, when it can no longer be looked
   * up (undefined since), the project its metadata named when last read; null when neither is known.
   */
  async eventProjectId(ref: DomainRef): Promise<string | null> {
    try {
      return await this.novaProjectId(ref);
    } catch {
      return this.novaCache.lastProjectId(ref) ?? null;
    }
  }

  /**
   * The domains of every host (or of the one named), undescribed. A host that cannot be listed is reported in
   * `failed` and the others are answered; with a single host, its failure is the answer's (503).
   */
  async listRefs(signal?: SignalSource, host?: string): Promise<{ refs: DomainRef[]; failed: (HostFailure & { error: GatewayError })[] }> {
    const sources = host === undefined ? this.sources : this.sources.filter((s) => s.name === host);
    const perHost = await Promise.allSettled(sources.map((s) => s.list(signal)));
    const refs: DomainRef[] = [];
    const failed: (HostFailure & { error: GatewayError })[] = [];
    for (const [i, r] of perHost.entries()) {
      if (r.status === 'fulfilled') refs.push(...r.value);
      else {
        const error = backendError(r.reason);
        if (!this.several) throw error;
        failed.push({ host: sources[i]!.name, code: error.code, detail: error.message, error });
      }
    }
    return { refs, failed };
  }

  /** Every domain of every host (or of the one named), described; see listRefs for hosts that cannot be listed. */
  async list(signal?: SignalSource, host?: string): Promise<{ domains: DomainInfo[]; failed: HostFailure[] }> {
    const { refs, failed } = await this.listRefs(signal, host);
    const described = await Promise.allSettled(refs.map((ref) => this.describe(ref, signal)));
    const domains: DomainInfo[] = [];
    for (const result of described) {
      if (result.status === 'fulfilled') domains.push(result.value);
      // A domain undefined between the list and its description is simply gone.
      else if (!(result.reason instanceof GatewayError && result.reason.code === 'domain_not_found')) throw result.reason;
    }
    return {
      domains: domains.sort(byNameThenHost),
      failed: failed.map(({ host, code, detail }) => ({ host, code, detail })),
    };
  }
}

function isNotFound(err: unknown): boolean {
  return (
    (err instanceof LibvirtError && err.code === VirErrorCode.NO_DOMAIN) ||
    (err instanceof AgentSocketError && err.code === 'no_such_domain') ||
    (err instanceof GatewayError && err.code === 'domain_not_found')
  );
}
