// Each libvirt domain's Nova metadata (nova-metadata.ts), read once from its XML and kept while libvirt's events say
// the definition did not change. Nova writes the metadata when it defines the domain (spawn, hard reboot, resize,
// migration: lifecycle DEFINED, and STARTED/STOPPED make another definition the current one) and rewrites it with
// virDomainSetMetadata when an interface is attached or detached (METADATA_CHANGE, no lifecycle event). Each of those
// drops the domain's entry; lost or renewed event subscriptions drop the host's. A read begun before such an event,
// or while events were not flowing, is answered but not kept, as in event-backed-cache.ts. So a request about a domain
// whose metadata is known asks libvirt nothing.
import type { Logger } from 'pino';
import type { LibvirtHosts } from '../libvirt/hosts.js';
import { DomainMetadataType, LifecycleEvent } from '../libvirt/protocol.js';
import { NOVA_NAMESPACES, readNovaMetadata, type NovaInstance } from './nova-metadata.js';
import { domainKey, type DomainRef } from './vocabulary.js';

const LAST_PROJECTS = 100_000;

/** The lifecycle events after which the XML libvirt answers may come from another definition. */
const REDEFINING = new Set<number>([
  LifecycleEvent.DEFINED,
  LifecycleEvent.UNDEFINED,
  LifecycleEvent.STARTED,
  LifecycleEvent.STOPPED,
  LifecycleEvent.CRASHED,
]);

/** One read of a domain's XML under way: what it learns is kept only if nothing changed meanwhile. */
export interface NovaRead {
  /** Parses the XML read, keeps the result when still current, and answers it. */
  learn(xml: string): NovaInstance | null;
}

export class NovaMetadataCache {
  /** By domainKey(); null: the domain has no (usable) Nova metadata. */
  private readonly known = new Map<string, NovaInstance | null>();
  /** Per host: bumped by every event that drops an entry of that host. */
  private readonly generations = new Map<string, number>();
  /**
   * The project each domain's metadata named when last read, kept across the events that drop `known`: the owner of
   * a domain that is gone (undefined), for its last events (GET /events). The oldest dropped past LAST_PROJECTS.
   */
  private readonly lastProjects = new Map<string, string | null>();

  constructor(
    private readonly hosts: Pick<LibvirtHosts, 'on' | 'get'>,
    private readonly log: Logger,
  ) {
    hosts.on('lifecycle', ({ host, key, event }) => {
      if (REDEFINING.has(event)) this.drop(host, key);
    });
    hosts.on('metadataChange', ({ host, key, type, nsuri }) => {
      if (type === DomainMetadataType.ELEMENT && (nsuri === null || NOVA_NAMESPACES.includes(nsuri))) this.drop(host, key);
    });
    hosts.on('eventsLost', ({ host }) => this.dropHost(host));
    hosts.on('eventsSubscribed', ({ host }) => this.dropHost(host));
  }

  private flowing(host: string): boolean {
    return this.hosts.get(host)?.pool.eventsSubscribed ?? false;
  }

  private bump(host: string): void {
    this.generations.set(host, (this.generations.get(host) ?? 0) + 1);
  }

  private drop(host: string, key: string): void {
    this.bump(host);
    this.known.delete(key);
  }

  private dropHost(host: string): void {
    this.bump(host);
    for (const key of this.known.keys()) if (key.startsWith(`${host}/`)) this.known.delete(key);
  }

  /** The project the domain's metadata named when it was last read (null: none), undefined when never read. */
  lastProjectId(ref: Pick<DomainRef, 'host' | 'uuid'>): string | null | undefined {
    return this.lastProjects.get(domainKey(ref));
  }

  /** What is known of the domain: its Nova instance, null for none, undefined when it must be read. */
  get(ref: DomainRef): NovaInstance | null | undefined {
    return this.flowing(ref.host) ? this.known.get(domainKey(ref)) : undefined;
  }

  /** Starts a read of the domain's XML; call learn() with what libvirt answered. */
  reading(ref: DomainRef): NovaRead {
    const generation = this.generations.get(ref.host) ?? 0;
    const flowing = this.flowing(ref.host);
    return {
      learn: (xml) => {
        const { nova, problem } = readNovaMetadata(xml);
        // Once per read, and a read is kept until the definition changes: one line per domain and definition.
        if (problem) this.log.debug({ domain: ref.name, host: ref.host, problem }, 'Nova metadata ignored');
        const current = flowing && this.flowing(ref.host) && generation === (this.generations.get(ref.host) ?? 0);
        const key = domainKey(ref);
        if (current) this.known.set(key, nova);
        this.lastProjects.delete(key);
        this.lastProjects.set(key, nova?.project.id ?? null);
        if (this.lastProjects.size > LAST_PROJECTS) this.lastProjects.delete(this.lastProjects.keys().next().value!);
        return nova;
      },
    };
  }
}
