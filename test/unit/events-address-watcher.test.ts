// The address watcher (src/events/address-watcher.ts), on fake timers: one read per domain per interval and never two
// at once, an event only when the addresses changed (or for a fresh agent), domains found at start spread over one
// interval, and nothing read for a domain whose agent went away.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { InterfaceAddresses } from '../../src/agent/guest/interface-addresses.js';
import { AddressWatcher, type WatchCandidate } from '../../src/events/address-watcher.js';
import { EventBus } from '../../src/events/bus.js';
import type { EventDomain, GatewayEvent } from '../../src/events/types.js';

const INTERVAL = 30_000;
const dom = (name: string): EventDomain => ({ host: 'local', name, uuid: `00000000-0000-4000-8000-${name.padStart(12, '0')}` });
const nic = (address: string): InterfaceAddresses[] => [
  { name: 'eth0', mac: '52:54:00:00:00:01', addresses: [{ family: 'ipv4', address, prefix: 24 }] },
];

interface Rig {
  bus: EventBus;
  watcher: AddressWatcher;
  published: GatewayEvent[];
  reads: string[];
  addresses: Map<string, string>;
  /** Reads of these domains wait until released. */
  held: Map<string, () => void>;
  candidates: WatchCandidate[];
  failing: Map<string, Error>;
}

function rig(candidates: WatchCandidate[] = [], isGone = (e: unknown) => (e as Error).message === 'gone'): Rig {
  const bus = new EventBus(100);
  const r: Rig = {
    bus,
    published: [],
    reads: [],
    addresses: new Map(),
    held: new Map(),
    candidates,
    failing: new Map(),
    watcher: null as never,
  };
  bus.subscribe((e) => {
    if (e.event.type === 'addresses') r.published.push(e.event);
  });
  r.watcher = new AddressWatcher(
    bus,
    {
      read: async (d) => {
        r.reads.push(d.name);
        if (r.held.has(d.name)) await new Promise<void>((release) => r.held.set(d.name, release));
        const failure = r.failing.get(d.name);
        if (failure) throw failure;
        return nic(r.addresses.get(d.name) ?? '10.0.0.1');
      },
      discover: async () => r.candidates,
      isGone,
    },
    INTERVAL,
  );
  return r;
}

const connect = (r: Rig, name: string) => r.bus.publish({ type: 'agent', domain: dom(name), state: 'connected', reason: 'channel' });
const disconnect = (r: Rig, name: string) => r.bus.publish({ type: 'agent', domain: dom(name), state: 'disconnected', reason: 'channel' });
const addressOf = (e: GatewayEvent) => (e.type === 'addresses' ? e.interfaces[0]?.addresses[0]?.address : undefined);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the address watcher', () => {
  it('reads a domain when its agent connects, publishes that read, then only changes, once per interval', async () => {
    const r = rig();
    r.watcher.start();
    connect(r, 'web1');
    await vi.advanceTimersByTimeAsync(0);
    expect(r.reads).toEqual(['web1']);
    expect(r.published.map(addressOf)).toEqual(['10.0.0.1']);
    await vi.advanceTimersByTimeAsync(INTERVAL * 3);
    expect(r.reads).toHaveLength(4);
    expect(r.published).toHaveLength(1);
    r.addresses.set('web1', '10.0.0.2');
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(r.published.map(addressOf)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(r.published[1]!.type === 'addresses' && r.published[1]!.domain).toEqual(dom('web1'));
    r.watcher.stop();
  });

  it('publishes the first read after a reconnect even when nothing changed: a new stream cannot know the old state', async () => {
    const r = rig();
    r.watcher.start();
    connect(r, 'web1');
    await vi.advanceTimersByTimeAsync(0);
    disconnect(r, 'web1');
    await vi.advanceTimersByTimeAsync(INTERVAL * 2);
    expect(r.reads).toEqual(['web1']);
    expect(r.watcher.size).toBe(0);
    connect(r, 'web1');
    await vi.advanceTimersByTimeAsync(0);
    expect(r.published.map(addressOf)).toEqual(['10.0.0.1', '10.0.0.1']);
    r.watcher.stop();
  });

  it('never runs two reads of one domain at once; a connect during a read reads again right after it', async () => {
    const r = rig();
    r.watcher.start();
    r.held.set('web1', () => {});
    connect(r, 'web1');
    await vi.advanceTimersByTimeAsync(INTERVAL * 5);
    expect(r.reads).toEqual(['web1']);
    connect(r, 'web1');
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(r.reads).toEqual(['web1']);
    const release = r.held.get('web1')!;
    r.held.delete('web1');
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(r.reads).toEqual(['web1', 'web1']);
    expect(r.published).toHaveLength(2);
    r.watcher.stop();
  });

  it('spreads the domains connected at start over one interval instead of asking every agent at once', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `vm${i}`);
    const r = rig([...names.map((n) => ({ domain: dom(n), watch: true })), { domain: dom('off'), watch: false }]);
    r.watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(r.reads).toEqual(['vm0']);
    await vi.advanceTimersByTimeAsync(INTERVAL / 2 - 1);
    expect(r.reads).toHaveLength(5);
    await vi.advanceTimersByTimeAsync(INTERVAL / 2);
    expect(new Set(r.reads)).toEqual(new Set(names));
    expect(r.watcher.size).toBe(10);
    // Discovering again (libvirt's events came back) adds no second timer for a domain already watched.
    await r.watcher.discover();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(r.reads).toHaveLength(20);
    r.watcher.stop();
  });

  it('keeps asking an agent that fails now, and stops watching a domain that is gone', async () => {
    const r = rig();
    r.watcher.start();
    r.failing.set('web1', new Error('agent timed out'));
    r.failing.set('gone1', new Error('gone'));
    connect(r, 'web1');
    connect(r, 'gone1');
    await vi.advanceTimersByTimeAsync(INTERVAL * 2);
    expect(r.reads.filter((n) => n === 'web1')).toHaveLength(3);
    expect(r.reads.filter((n) => n === 'gone1')).toHaveLength(1);
    expect(r.watcher.size).toBe(1);
    r.failing.delete('web1');
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(r.published.map((e) => e.type === 'addresses' && e.domain.name)).toEqual(['web1']);
    r.watcher.stop();
  });

  it('stops watching a domain that stops, crashes or is undefined, and leaves no timer behind when stopped', async () => {
    const r = rig();
    r.watcher.start();
    for (const n of ['a', 'b', 'c', 'd']) connect(r, n);
    await vi.advanceTimersByTimeAsync(0);
    r.bus.publish({ type: 'domain', domain: dom('a'), event: 'stopped', detail: 'destroyed', state: 'shutoff' });
    r.bus.publish({ type: 'domain', domain: dom('b'), event: 'crashed', detail: 'panicked', state: 'crashed' });
    r.bus.publish({ type: 'domain', domain: dom('c'), event: 'undefined', detail: 'removed', state: 'running' });
    r.bus.publish({ type: 'domain', domain: dom('d'), event: 'suspended', detail: 'paused', state: 'paused' });
    expect(r.watcher.size).toBe(1);
    r.watcher.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect(r.bus.listenerCount).toBe(1);
  });

  it('watches agent-socket domains from their socket appearing, and reads nothing at all with an interval of 0', async () => {
    const r = rig();
    r.watcher.start();
    r.bus.publish({ type: 'domain', domain: dom('s1'), event: 'started', detail: 'socket-appeared', state: 'running' });
    await vi.advanceTimersByTimeAsync(0);
    expect(r.reads).toEqual(['s1']);
    r.watcher.stop();

    const bus = new EventBus(10);
    let reads = 0;
    const read = async () => {
      reads++;
      return [];
    };
    const off = new AddressWatcher(bus, { read, discover: async () => [{ domain: dom('x'), watch: true }] }, 0);
    off.start();
    bus.publish({ type: 'agent', domain: dom('x'), state: 'connected', reason: 'channel' });
    await vi.advanceTimersByTimeAsync(INTERVAL * 10);
    expect(reads).toBe(0);
    expect(bus.listenerCount).toBe(0);
  });
});
