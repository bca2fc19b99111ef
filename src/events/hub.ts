// The events layer put together (built once by the composition root): the bus, the sources that feed it, the address
// watcher, and the streams open on it, counted against events.maxClients and told to close when the gateway stops.
import { interfaceAddresses } from '../agent/guest/interface-addresses.js';
import { guestNetworkGetInterfaces } from '../agent/commands/network.js';
import type { AgentService } from '../agent/core/service.js';
import type { AgentSocketHost } from '../agent-socket/host.js';
import type { Config } from '../config/schema.js';
import type { DomainDirectory } from '../domains/directory.js';
import { GatewayError } from '../errors.js';
import type { LibvirtHosts } from '../libvirt/hosts.js';
import { AddressWatcher } from './address-watcher.js';
import { EventBus, type PublishedEvent } from './bus.js';
import { accepts, type StreamFilter } from './filter.js';
import { libvirtEvents } from './libvirt-source.js';
import { SocketEvents } from './socket-source.js';

/** What a stream is told: its events, in order, and that the gateway is stopping. */
export interface StreamSink {
  event(e: PublishedEvent): void;
  shutdown(): void;
}

export interface OpenStream {
  /** Where the stream starts: the newest event's id, or the client's Last-Event-ID when it resumes. */
  position: string;
  /** What the client missed since its Last-Event-ID (filtered), to send before anything else. */
  replayed: PublishedEvent[];
  /** Why the client's Last-Event-ID cannot be resumed from (it must re-read the state); null when it can or sent none. */
  reset: string | null;
  /** The stream was ended for a client too slow (counted for the metrics). */
  overflowed(): void;
  close(): void;
}

export interface HubServices {
  hosts: LibvirtHosts;
  sockets: AgentSocketHost | null;
  socketRescanMs: number;
  agent: AgentService;
  directory: DomainDirectory;
}

export class EventHub {
  readonly bus: EventBus;
  readonly addresses: AddressWatcher;
  private readonly socketEvents: SocketEvents | null;
  private readonly streams = new Set<StreamSink>();
  /** Events published so far, by type; and streams dropped for a slow client: for GET /metrics. */
  readonly published = new Map<string, number>();
  dropped = 0;
  private readonly detach: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly config: Config['events'],
    private readonly services: HubServices,
  ) {
    this.bus = new EventBus(config.bufferSize);
    this.bus.subscribe(({ event }) => this.published.set(event.type, (this.published.get(event.type) ?? 0) + 1));
    const { agent, directory } = services;
    this.addresses = new AddressWatcher(
      this.bus,
      {
        read: async (d) => {
          const dom = await directory.resolve(`${d.host}:${d.uuid}`);
          return interfaceAddresses(await agent.execute(dom, guestNetworkGetInterfaces, undefined));
        },
        discover: async (host) =>
          (await directory.list(undefined, host)).domains.map((info) => ({
            domain: { host: info.host, name: info.name, uuid: info.uuid },
            watch: info.state === 'running' && (info.backend === 'agent-socket' || info.agent.state === 'connected'),
          })),
        isGone: (err) => err instanceof GatewayError && err.code === 'domain_not_found',
      },
      config.addressesPollMs,
    );
    this.socketEvents = services.sockets ? new SocketEvents(services.sockets, this.bus, Math.max(1000, services.socketRescanMs)) : null;
  }

  /** Starts listening to libvirt, looking at agent sockets and reading addresses. */
  start(): void {
    const { hosts } = this.services;
    this.detach.push(libvirtEvents(hosts, this.bus));
    // A host's libvirt events (re)subscribed: the agents that connected meanwhile were not announced; look at that host's domains.
    const rediscover = ({ host }: { host: string }) => void this.addresses.discover(host);
    hosts.on('eventsSubscribed', rediscover);
    this.detach.push(() => hosts.off('eventsSubscribed', rediscover));
    this.socketEvents?.start();
    this.addresses.start();
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * A new stream: 503 too_many_streams past events.maxClients. Subscribes and replays in one step, so that the
   * sink gets every event after the position exactly once, in order, provided it writes `replayed` first.
   */
  open(filter: StreamFilter, sink: StreamSink, lastEventId: string | undefined): OpenStream {
    if (this.closed) throw new GatewayError('shutting_down', 'the gateway is shutting down');
    if (this.streams.size >= this.config.maxClients)
      throw new GatewayError('too_many_streams', `${this.config.maxClients} event streams are open already (events.maxClients)`, {
        retryAfter: 5,
      });
    this.streams.add(sink);
    const unsubscribe = this.bus.subscribe((e) => {
      if (accepts(filter, e.event)) sink.event(e);
    });
    const stream = {
      close: () => {
        unsubscribe();
        this.streams.delete(sink);
      },
      overflowed: () => {
        this.dropped++;
      },
    };
    if (lastEventId === undefined) return { position: this.bus.position, replayed: [], reset: null, ...stream };
    const replay = this.bus.replay(lastEventId);
    if (!replay.ok) return { position: this.bus.position, replayed: [], reset: replay.reason, ...stream };
    return { position: lastEventId, replayed: replay.events.filter((e) => accepts(filter, e.event)), reset: null, ...stream };
  }

  /** Tells every stream that the gateway is stopping (each sends its `closing` event and ends); refuses new ones. */
  closeStreams(): void {
    this.closed = true;
    for (const sink of [...this.streams]) sink.shutdown();
  }

  /** Stops the sources, the watcher's timers and every stream. */
  close(): void {
    this.closeStreams();
    this.addresses.stop();
    this.socketEvents?.stop();
    for (const f of this.detach.splice(0)) f();
  }
}
