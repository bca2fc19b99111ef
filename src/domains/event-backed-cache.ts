// What one libvirt host said of its domains (the list, each domain's state), kept for as long as its domain events
// flow and dropped at the first lifecycle event of that host, or when its events are lost or subscribed anew: libvirt
// reports every change of a domain's state or of the list (defined, undefined, started, stopped, suspended, resumed,
// shut down, crashed, pmsuspended) with one, so while none came, the last answer still holds. GET /domains/{d},
// GET /domains and GET /addresses then ask libvirt nothing while nothing changed (a round trip each, and most of
// their CPU). A read that started before an event, or while events were not flowing, is answered but not kept.
import type { LibvirtPool } from '../libvirt/pool.js';
import type { DomainStateName } from '../libvirt/protocol.js';
import type { DomainRef } from './vocabulary.js';

type EventSource = Pick<LibvirtPool, 'on' | 'eventsSubscribed'>;

export class EventBackedCache {
  /** Bumped by every event that drops what is kept: a read begun under an older one is not kept. */
  private generation = 0;
  private list: readonly DomainRef[] | null = null;
  /** By domain UUID. */
  private readonly states = new Map<string, DomainStateName>();

  constructor(private readonly events: EventSource) {
    const drop = () => {
      this.generation++;
      this.list = null;
      this.states.clear();
    };
    events.on('lifecycle', drop);
    events.on('eventsLost', drop);
    events.on('eventsSubscribed', drop);
  }

  async domains(fetch: () => Promise<DomainRef[]>): Promise<DomainRef[]> {
    if (this.list && this.events.eventsSubscribed) return [...this.list];
    return this.keep(fetch, (refs) => {
      this.list = [...refs];
    });
  }

  async state(uuid: string, fetch: () => Promise<DomainStateName>): Promise<DomainStateName> {
    const known = this.events.eventsSubscribed ? this.states.get(uuid) : undefined;
    if (known) return known;
    return this.keep(fetch, (state) => this.states.set(uuid, state));
  }

  private async keep<T>(fetch: () => Promise<T>, store: (value: T) => void): Promise<T> {
    const generation = this.generation;
    const flowing = this.events.eventsSubscribed;
    const value = await fetch();
    if (flowing && this.events.eventsSubscribed && generation === this.generation) store(value);
    return value;
  }
}
