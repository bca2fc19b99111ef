// Every event the gateway publishes, numbered and kept (the last `bufferSize` of them) for streams that resume.
// An id is "<epoch>-<seq>": seq counts from 1 in this process, epoch names the process (its start time and a
// random part, base 36), so an id from an earlier gateway, or another replica behind the same name, is never taken
// for one of this one's: the client gets a `reset` and re-reads the state instead of silently missing events.
// Each event is serialised once here, whatever the number of streams.
import { randomBytes } from 'node:crypto';
import { EventRing } from './ring.js';
import type { EventBody, GatewayEvent } from './types.js';

export interface PublishedEvent {
  seq: number;
  event: GatewayEvent;
  /** The event as one line of JSON: the `data:` of its SSE frame. */
  json: string;
}

export type Replay = { ok: true; events: PublishedEvent[] } | { ok: false; reason: string };

export class EventBus {
  readonly epoch = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  private seq = 0;
  private readonly ring: EventRing<PublishedEvent>;
  private readonly listeners = new Set<(e: PublishedEvent) => void>();

  constructor(bufferSize: number) {
    this.ring = new EventRing(bufferSize);
  }

  /** The id of the newest event published (epoch-0 before the first): where a new stream stands. */
  get position(): string {
    return this.idOf(this.seq);
  }

  idOf(seq: number): string {
    return `${this.epoch}-${seq}`;
  }

  /** Numbers, keeps and hands the event to every listener, synchronously and in order. */
  publish(body: EventBody): PublishedEvent {
    const seq = ++this.seq;
    const event = { id: this.idOf(seq), ...body, time: new Date().toISOString() } as GatewayEvent;
    const published: PublishedEvent = { seq, event, json: JSON.stringify(event) };
    this.ring.push(published);
    for (const listener of this.listeners) listener(published);
    return published;
  }

  /** Returns the unsubscribe function. Subscribing and then replaying in the same tick neither loses nor repeats an event. */
  subscribe(listener: (e: PublishedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** The events after a client's Last-Event-ID, or why they cannot be given. */
  replay(lastEventId: string): Replay {
    const m = /^([0-9a-z]+)-(0|[1-9][0-9]{0,15})$/.exec(lastEventId);
    if (!m) return { ok: false, reason: `'${lastEventId.slice(0, 64)}' is not an event id of this gateway` };
    if (m[1] !== this.epoch) return { ok: false, reason: 'the event id is from an earlier run of the gateway (or another one)' };
    const seq = Number(m[2]);
    if (seq > this.seq) return { ok: false, reason: 'the event id is newer than any event of this gateway' };
    const events = this.ring.since(seq);
    if (!events) return { ok: false, reason: `events after ${lastEventId} are no longer kept (events.bufferSize ${this.ring.capacity})` };
    return { ok: true, events };
  }
}
