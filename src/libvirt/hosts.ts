// The libvirt daemons the gateway serves: one per hypervisor, each with its own pool of connections and its own
// events. A domain is known by (host, UUID): the same UUID may well show up on two hosts (a migrated domain, or
// one daemon reached over two transports), so every per-domain table keys on domainKey() (src/domains/vocabulary.ts).
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { domainKey, type DomainRef } from '../domains/vocabulary.js';
import { LibvirtClient } from './client.js';
import {
  LibvirtPool,
  type AgentLifecycleEventMsg,
  type LifecycleEventMsg,
  type MetadataChangeEventMsg,
  type RebootEventMsg,
} from './pool.js';
import { uuidToString } from './protocol.js';
import { resolveUri } from './uri.js';

export type HostConfig = Config['libvirt']['hosts'][number];

export interface HostLifecycleEvent extends LifecycleEventMsg {
  host: string;
  /** domainKey() of the domain the event is about. */
  key: string;
}
export interface HostAgentLifecycleEvent extends AgentLifecycleEventMsg {
  host: string;
  key: string;
}

export interface HostRebootEvent extends RebootEventMsg {
  host: string;
  key: string;
}

export interface HostMetadataChangeEvent extends MetadataChangeEventMsg {
  host: string;
  key: string;
}

type HostsEvents = {
  lifecycle: [HostLifecycleEvent];
  agentLifecycle: [HostAgentLifecycleEvent];
  reboot: [HostRebootEvent];
  metadataChange: [HostMetadataChangeEvent];
  /** Events of this host may have been missed: forget what was learnt from them. */
  eventsLost: [{ host: string }];
  eventsSubscribed: [{ host: string }];
};

export class LibvirtHost {
  readonly pool: LibvirtPool;
  readonly client: LibvirtClient;

  constructor(
    readonly name: string,
    readonly uri: string,
    readonly transportKind: string,
    pool: LibvirtPool,
  ) {
    this.pool = pool;
    this.client = new LibvirtClient(pool, name);
  }

  /** up: every connection open; degraded: some; down: none. */
  get state(): 'up' | 'degraded' | 'down' {
    const up = this.pool.up;
    return up === 0 ? 'down' : up < this.pool.size ? 'degraded' : 'up';
  }
}

/** Every configured host; events of all hosts re-emitted with the host they came from. */
export class LibvirtHosts extends EventEmitter<HostsEvents> {
  readonly list: readonly LibvirtHost[];
  private readonly byName: Map<string, LibvirtHost>;

  constructor(hosts: LibvirtHost[]) {
    super();
    // Many per-domain tables subscribe per host; the default warning at 10 listeners is noise here.
    this.setMaxListeners(0);
    this.list = hosts;
    this.byName = new Map(hosts.map((h) => [h.name, h]));
    for (const h of hosts) {
      const key = (m: { dom: { uuid: Uint8Array } }) => domainKey({ host: h.name, uuid: uuidToString(m.dom.uuid) });
      h.pool.on('lifecycle', (m) => this.emit('lifecycle', { ...m, host: h.name, key: key(m) }));
      h.pool.on('agentLifecycle', (m) => this.emit('agentLifecycle', { ...m, host: h.name, key: key(m) }));
      h.pool.on('reboot', (m) => this.emit('reboot', { ...m, host: h.name, key: key(m) }));
      h.pool.on('metadataChange', (m) => this.emit('metadataChange', { ...m, host: h.name, key: key(m) }));
      h.pool.on('eventsLost', () => this.emit('eventsLost', { host: h.name }));
      h.pool.on('eventsSubscribed', () => this.emit('eventsSubscribed', { host: h.name }));
    }
  }

  static fromConfig(config: Config['libvirt'], log: Logger): LibvirtHosts {
    return new LibvirtHosts(
      hostConfigs(config).map((h) => {
        const { transport, name } = resolveUri(h.uri, h.socketPath, undefined, h.tls);
        const pool = new LibvirtPool(
          {
            transport,
            name,
            size: h.connections ?? config.connections,
            maxCallsPerConnection: config.maxCallsPerConnection,
            connectTimeoutMs: config.connectTimeoutMs,
            keepaliveIntervalMs: config.keepaliveIntervalMs,
            keepaliveCount: config.keepaliveCount,
            backoffInitialMs: config.backoffInitialMs,
            backoffMaxMs: config.backoffMaxMs,
          },
          log.child({ component: 'libvirt', host: h.name }),
        );
        return new LibvirtHost(h.name, h.uri, transport.kind, pool);
      }),
    );
  }

  get(name: string): LibvirtHost | undefined {
    return this.byName.get(name);
  }

  /** The host a domain lives on; every DomainRef comes from one of them. */
  of(dom: Pick<DomainRef, 'host'>): LibvirtHost {
    const host = this.byName.get(dom.host);
    if (!host) throw new Error(`no libvirt host named '${dom.host}'`);
    return host;
  }

  client(dom: Pick<DomainRef, 'host'>): LibvirtClient {
    return this.of(dom).client;
  }

  start(): void {
    for (const h of this.list) h.pool.start();
  }

  async close(): Promise<void> {
    await Promise.all(this.list.map((h) => h.pool.close()));
  }
}

/** The configured hosts; without a `hosts` list, one host named "local" from libvirt.uri; none when libvirt is disabled. */
export function hostConfigs(config: Config['libvirt']): HostConfig[] {
  if (!config.enabled) return [];
  if (config.hosts.length) return config.hosts;
  return [{ name: 'local', uri: config.uri, ...(config.socketPath ? { socketPath: config.socketPath } : {}) }];
}
