// `addresses` events: each domain whose agent is connected has its interfaces read through the agent service (never
// the wire) once when its agent connects, then every `events.addressesPollMs`, and an event is published when they
// differ from the last read (the first read after a connect is always published: a stream cannot know the state
// before it). At most one read per domain per interval: the next is timed from the end of the last, and a read
// still running is never doubled. Domains already connected when the gateway starts (or when libvirt's events
// come back after a gap) are spread evenly over one interval, so that a thousand agents are not asked at once.
// Agent-socket domains are read while their socket is there: reading is how their agent is known to answer.
import type { InterfaceAddresses } from '../agent/guest/interface-addresses.js';
import type { EventBus, PublishedEvent } from './bus.js';
import type { EventDomain } from './types.js';

export interface WatchCandidate {
  domain: EventDomain;
  /** Worth reading: a connected agent (libvirt), or a socket that is there (agent sockets). */
  watch: boolean;
}

export interface AddressSources {
  /** One read of a domain's interfaces (through the agent service). */
  read(domain: EventDomain): Promise<InterfaceAddresses[]>;
  /** Every domain now (of that host only, when one is named), with whether to watch it. */
  discover(host?: string): Promise<WatchCandidate[]>;
  /** A read failed: whether the domain is gone for good (not found), so that it is no longer watched. */
  isGone?(err: unknown): boolean;
}

interface Watched {
  domain: EventDomain;
  timer: NodeJS.Timeout | null;
  reading: boolean;
  /** Read again as soon as the running read ends (its agent connected meanwhile). */
  again: boolean;
  /** The last read, as JSON; null: publish the next read whatever it says. */
  last: string | null;
}

const keyOf = (d: EventDomain) => `${d.host}/${d.uuid}`;

export class AddressWatcher {
  private readonly watched = new Map<string, Watched>();
  private unsubscribe: (() => void) | null = null;
  private stopped = false;
  /** Reads started, for the tests and the logs. */
  reads = 0;

  constructor(
    private readonly bus: EventBus,
    private readonly sources: AddressSources,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.intervalMs === 0) return;
    this.unsubscribe = this.bus.subscribe((e) => this.onEvent(e));
    void this.discover();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const w of this.watched.values()) if (w.timer) clearTimeout(w.timer);
    this.watched.clear();
  }

  /** Domains watched now. */
  get size(): number {
    return this.watched.size;
  }

  /**
   * Looks at every domain again (at start), or at one host's (after a gap in that host's libvirt events: each host
   * subscribes on its own, and looking at every host for each would cost hosts x hosts calls when all come back at
   * once): new ones spread over one interval.
   */
  async discover(host?: string): Promise<void> {
    if (this.intervalMs === 0 || this.stopped) return;
    let candidates: WatchCandidate[];
    try {
      candidates = await this.sources.discover(host);
    } catch {
      return; // libvirt not reachable yet: its events, once subscribed, make the gateway look again
    }
    if (this.stopped) return;
    const fresh = candidates.filter((c) => c.watch && !this.watched.has(keyOf(c.domain)));
    for (const [i, c] of fresh.entries()) this.watch(c.domain, Math.floor((i * this.intervalMs) / fresh.length));
  }

  private onEvent({ event }: PublishedEvent): void {
    if (event.type === 'agent') {
      if (event.state === 'connected') this.watch(event.domain, 0, true);
      else this.unwatch(event.domain);
    } else if (event.type === 'domain') {
      if (event.event === 'started' && event.detail === 'socket-appeared') this.watch(event.domain, 0, true);
      else if (event.event === 'stopped' || event.event === 'crashed' || event.event === 'undefined') this.unwatch(event.domain);
    }
  }

  /** Reads after delayMs, then every interval; `fresh`: a new agent, whose first read is published whatever it says. */
  private watch(domain: EventDomain, delayMs: number, fresh = false): void {
    const key = keyOf(domain);
    let w = this.watched.get(key);
    if (!w) {
      w = { domain, timer: null, reading: false, again: false, last: null };
      this.watched.set(key, w);
    } else if (!fresh) return;
    if (fresh) w.last = null;
    if (w.reading) {
      w.again = true;
      return;
    }
    this.schedule(w, delayMs);
  }

  private unwatch(domain: EventDomain): void {
    const w = this.watched.get(keyOf(domain));
    if (!w) return;
    if (w.timer) clearTimeout(w.timer);
    this.watched.delete(keyOf(domain));
  }

  private schedule(w: Watched, delayMs: number): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = setTimeout(() => void this.read(w), delayMs);
  }

  private async read(w: Watched): Promise<void> {
    w.timer = null;
    w.reading = true;
    w.again = false;
    this.reads++;
    let gone = false;
    try {
      const interfaces = await this.sources.read(w.domain);
      const json = JSON.stringify(interfaces);
      if (this.watched.get(keyOf(w.domain)) === w && json !== w.last) {
        w.last = json;
        this.bus.publish({ type: 'addresses', domain: w.domain, interfaces });
      }
    } catch (err) {
      // Not answering now (rebooting, frozen, busy): the next interval asks again.
      gone = this.sources.isGone?.(err) ?? false;
    } finally {
      w.reading = false;
    }
    if (this.stopped || this.watched.get(keyOf(w.domain)) !== w) return;
    if (gone) {
      this.unwatch(w.domain);
      return;
    }
    // Its agent connected while this read ran: read again at once, and publish that read whatever it says.
    if (w.again) w.last = null;
    this.schedule(w, w.again ? 0 : this.intervalMs);
  }
}
