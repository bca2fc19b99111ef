// The events' memory and numbering (src/events/ring.ts, bus.ts) and what one stream sees (filter.ts): resuming
// gives every event after the id exactly once, or says why it cannot; a filter never lets another identity's domain
// through, live or replayed.
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/bus.js';
import { accepts, EVERYTHING, type StreamFilter } from '../../src/events/filter.js';
import { EventRing } from '../../src/events/ring.js';
import type { EventBody, EventDomain } from '../../src/events/types.js';

const dom = (name: string, host = 'local'): EventDomain => ({ host, name, uuid: `00000000-0000-4000-8000-${name.padStart(12, '0')}` });
const started = (name: string): EventBody => ({
  type: 'domain',
  domain: dom(name),
  event: 'started',
  detail: 'booted',
  state: 'running',
});

describe('EventRing', () => {
  it('keeps the newest `capacity` items, oldest first, across many turns of the circle', () => {
    const ring = new EventRing<{ seq: number }>(3);
    expect(ring.since(0)).toEqual([]);
    for (let seq = 1; seq <= 10; seq++) ring.push({ seq });
    expect(ring.size).toBe(3);
    expect(ring.oldest).toEqual({ seq: 8 });
    expect(ring.since(7)!.map((e) => e.seq)).toEqual([8, 9, 10]);
    expect(ring.since(9)!.map((e) => e.seq)).toEqual([10]);
    expect(ring.since(10)).toEqual([]);
    // 7 is the last one a client may have seen for nothing to be missing; before it, 7 itself is lost.
    expect(ring.since(6)).toBeNull();
  });
});

describe('EventBus', () => {
  it('numbers events from 1 under its epoch and serialises each once, as the stream sends it', () => {
    const bus = new EventBus(10);
    expect(bus.position).toBe(`${bus.epoch}-0`);
    const got: string[] = [];
    const off = bus.subscribe((e) => got.push(e.json));
    const first = bus.publish(started('a'));
    expect(first.event.id).toBe(`${bus.epoch}-1`);
    expect(JSON.parse(first.json)).toEqual({ ...first.event });
    expect(Object.keys(JSON.parse(first.json)).slice(0, 2)).toEqual(['id', 'type']);
    expect(new Date(first.event.time).toISOString()).toBe(first.event.time);
    off();
    bus.publish(started('b'));
    expect(got).toEqual([first.json]);
    expect(bus.listenerCount).toBe(0);
  });

  it('replays what came after an id, or says why not: garbage, another epoch, the future, or too old', () => {
    const bus = new EventBus(3);
    for (const n of ['a', 'b', 'c', 'd', 'e']) bus.publish(started(n));
    const ok = bus.replay(`${bus.epoch}-3`);
    expect(ok.ok && ok.events.map((e) => (e.event as { domain: EventDomain }).domain.name)).toEqual(['d', 'e']);
    const none = bus.replay(`${bus.epoch}-5`);
    expect(none.ok && none.events).toEqual([]);
    const other = new EventBus(3);
    for (const [id, reason] of [
      ['nonsense', /not an event id/],
      [`${bus.epoch}-01`, /not an event id/],
      [`${bus.epoch}--1`, /not an event id/],
      [`${bus.epoch}-1e3`, /not an event id/],
      [`${bus.epoch}-3\n`, /not an event id/],
      [`${other.epoch}-1`, /earlier run/],
      [`${bus.epoch}-6`, /newer than any event/],
      [`${bus.epoch}-1`, /no longer kept \(events.bufferSize 3\)/],
    ] as const) {
      const r = bus.replay(id);
      expect(r.ok, id).toBe(false);
      if (!r.ok) expect(r.reason, id).toMatch(reason);
    }
    // A 100 kB id is not echoed back whole.
    const long = bus.replay('x'.repeat(100_000));
    expect(!long.ok && long.reason.length).toBeLessThan(200);
  });

  it('gives two gateways different epochs, so that one never resumes from the other', () => {
    const epochs = new Set(Array.from({ length: 50 }, () => new EventBus(1).epoch));
    expect(epochs.size).toBe(50);
  });
});

describe('a stream filter', () => {
  const bus = new EventBus(10);
  const events = [
    bus.publish(started('web1')).event,
    bus.publish({ type: 'agent', domain: dom('db1'), state: 'connected', reason: 'channel' }).event,
    bus.publish({ type: 'addresses', domain: dom('web2'), interfaces: [] }).event,
    bus.publish({ type: 'host', host: 'local', state: 'down', error: 'gone' }).event,
  ];
  const names = (f: StreamFilter) =>
    events.filter((e) => accepts(f, e)).map((e) => (e.type === 'host' ? `host:${e.host}` : `${e.type}:${e.domain.name}`));

  it('lets everything through unfiltered', () => {
    expect(names(EVERYTHING)).toEqual(['domain:web1', 'agent:db1', 'addresses:web2', 'host:local']);
  });

  it('keeps the types asked for', () => {
    expect(names({ ...EVERYTHING, types: new Set(['agent', 'host']) })).toEqual(['agent:db1', 'host:local']);
  });

  it('keeps the domains asked for, and then no host events (they are about no domain)', () => {
    expect(names({ ...EVERYTHING, domains: (d) => d.name.startsWith('web') })).toEqual(['domain:web1', 'addresses:web2']);
  });

  it('never lets through a domain the identity may not touch, whatever the stream asked for; hosts need none', () => {
    const mayTouch = (d: EventDomain) => d.name === 'web1';
    expect(names({ types: null, domains: null, mayTouch })).toEqual(['domain:web1', 'host:local']);
    expect(names({ types: null, domains: () => true, mayTouch })).toEqual(['domain:web1']);
  });
});
