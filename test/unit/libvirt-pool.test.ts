// LibvirtPool against the fake libvirtd: sizing, spreading, reconnecting with backoff, events, clean shutdown.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError } from '../../src/libvirt/errors.js';
import {
  LibvirtPool,
  type AgentLifecycleEventMsg,
  type LifecycleEventMsg,
  type MetadataChangeEventMsg,
  type PoolOptions,
} from '../../src/libvirt/pool.js';
import { Qemu, QemuProc, Remote, RemoteProc } from '../../src/libvirt/procedures.js';
import { DomainEventId, DomainMetadataType, LifecycleEvent, Program, uuidFromString } from '../../src/libvirt/protocol.js';
import { FakeLibvirtd, waitFor, type FakeLibvirtdOptions } from '../support/fake-libvirtd.js';

const log = pino({ level: 'silent' });
let fake: FakeLibvirtd | null = null;
const pools: LibvirtPool[] = [];

afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
  await fake?.stop();
  fake = null;
});

async function startFake(opts: FakeLibvirtdOptions = {}): Promise<FakeLibvirtd> {
  fake = await FakeLibvirtd.start(opts);
  fake.addDomain({ name: 'vm1' });
  return fake;
}

/** A started pool plus a log of the pool events it emitted, in order. */
function startPool(overrides: Partial<PoolOptions> = {}) {
  const pool = new LibvirtPool(fake!.poolOptions(overrides), log);
  pools.push(pool);
  const events: string[] = [];
  const lifecycle: LifecycleEventMsg[] = [];
  const agentLifecycle: AgentLifecycleEventMsg[] = [];
  pool.on('connectionUp', () => events.push('up'));
  pool.on('connectionDown', () => events.push('down'));
  pool.on('eventsLost', () => events.push('eventsLost'));
  pool.on('eventsSubscribed', () => events.push('eventsSubscribed'));
  pool.on('lifecycle', (m) => lifecycle.push(m));
  pool.on('agentLifecycle', (m) => agentLifecycle.push(m));
  pool.start();
  return { pool, events, lifecycle, agentLifecycle, count: (e: string) => events.filter((x) => x === e).length };
}

function lookup(pool: LibvirtPool, name: string) {
  return pool.call(Remote.DOMAIN_LOOKUP_BY_NAME, { name });
}

function ping(pool: LibvirtPool, name = 'vm1') {
  const d = fake!.domain(name);
  return pool.call(Qemu.DOMAIN_AGENT_COMMAND, {
    dom: { name: d.name, uuid: uuidFromString(d.uuid), id: d.id },
    cmd: '{"execute":"guest-ping"}',
    timeout: -1,
    flags: 0,
  });
}

/** The fake's client carrying the pool's event subscription. */
const eventClients = () => fake!.clients.filter((c) => c.callbacks.size > 0);

describe('LibvirtPool', () => {
  it('opens `size` connections and subscribes to events on exactly one', async () => {
    await startFake();
    const { pool, count } = startPool({ size: 3 });
    await pool.waitUntilUp(5000);
    await waitFor(() => pool.up === 3 && count('eventsSubscribed') === 1, 5000, '3 connections and a subscription');
    expect(pool.size).toBe(3);
    expect(fake!.connectionCount).toBe(3);
    expect(count('up')).toBe(3);
    expect(pool.reconnects).toBe(0);
    expect(pool.lastError).toBeNull();
    expect(eventClients()).toHaveLength(1);
    expect(fake!.eventCallbackCount(DomainEventId.LIFECYCLE)).toBe(1);
    expect(fake!.eventCallbackCount(DomainEventId.AGENT_LIFECYCLE)).toBe(1);
    expect(fake!.eventCallbackCount(DomainEventId.REBOOT)).toBe(1);
    expect(fake!.eventCallbackCount(DomainEventId.METADATA_CHANGE)).toBe(1);
    expect((await lookup(pool, 'vm1')).dom.name).toBe('vm1');
  });

  it('rejects calls with ConnectionError before any connection is up', async () => {
    await startFake();
    const pool = new LibvirtPool(fake!.poolOptions(), log);
    pools.push(pool);
    await expect(lookup(pool, 'vm1')).rejects.toThrow(/no connection to libvirtd: not connected yet/);
    fake!.acceptConnections = false;
    pool.start();
    const err = await pool.waitUntilUp(300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/no connection to libvirtd within 300 ms: /);
    await expect(lookup(pool, 'vm1')).rejects.toBeInstanceOf(ConnectionError);
  });

  it('spreads calls over the connections by fewest calls in flight', async () => {
    await startFake({ maxClientRequests: Infinity });
    const { pool, count } = startPool({ size: 3 });
    await waitFor(() => pool.up === 3 && count('eventsSubscribed') === 1, 5000, 'pool ready');
    const hold = fake!.holdReplies({ program: Program.QEMU, procedure: QemuProc.DOMAIN_AGENT_COMMAND });
    const calls = Array.from({ length: 9 }, () => ping(pool));
    await hold.waitUntilHeld(9);
    const perClient = new Map<number, number>();
    for (const c of fake!.calls.filter((x) => x.program === Program.QEMU)) perClient.set(c.clientId, (perClient.get(c.clientId) ?? 0) + 1);
    expect([...perClient.values()]).toEqual([3, 3, 3]);
    hold.release();
    await Promise.all(calls);
  });

  it('reconnects with backoff after libvirtd drops every client, and calls succeed again', async () => {
    await startFake();
    const { pool, events, count } = startPool({ size: 2 });
    await waitFor(() => pool.up === 2 && count('eventsSubscribed') === 1, 5000, 'pool ready');
    const accepted = fake!.totalConnections;
    fake!.dropClients();
    await waitFor(() => count('down') === 2, 5000, 'both connections down');
    await waitFor(() => pool.up === 2 && count('eventsSubscribed') === 2, 5000, 'pool back up');
    expect(pool.reconnects).toBe(2);
    expect(fake!.totalConnections).toBe(accepted + 2);
    expect(count('eventsLost')).toBeGreaterThanOrEqual(1);
    expect(events.lastIndexOf('eventsLost')).toBeLessThan(events.lastIndexOf('eventsSubscribed'));
    expect(eventClients()).toHaveLength(1);
    expect((await lookup(pool, 'vm1')).dom.name).toBe('vm1');
    expect(JSON.parse((await ping(pool)).result!)).toEqual({ return: {} });
  });

  it('keeps retrying while libvirtd refuses connections, then recovers', async () => {
    await startFake();
    const { pool, count } = startPool({ size: 2, backoffInitialMs: 5, backoffMaxMs: 40 });
    await waitFor(() => pool.up === 2 && count('eventsSubscribed') === 1, 5000, 'pool ready');
    fake!.acceptConnections = false;
    const before = fake!.totalConnections;
    fake!.dropClients();
    // Several failed attempts per slot: the pool keeps trying with backoff.
    await waitFor(() => fake!.totalConnections >= before + 6, 5000, 'repeated attempts');
    expect(pool.up).toBe(0);
    expect(pool.lastError).toBeInstanceOf(Error);
    await expect(lookup(pool, 'vm1')).rejects.toThrow(/no connection to libvirtd: /);
    fake!.acceptConnections = true;
    await waitFor(() => pool.up === 2 && count('eventsSubscribed') === 2, 5000, 'pool back up');
    expect(pool.reconnects).toBe(2);
    expect(pool.lastError).toBeNull();
    expect((await lookup(pool, 'vm1')).dom.name).toBe('vm1');
  });

  it('decodes lifecycle and agent lifecycle events and emits each once', async () => {
    await startFake();
    const { pool, count, lifecycle, agentLifecycle } = startPool({ size: 3 });
    await waitFor(() => pool.up === 3 && count('eventsSubscribed') === 1, 5000, 'pool ready');
    const vm1 = fake!.domain('vm1');
    expect(fake!.emitLifecycle('vm1', LifecycleEvent.STOPPED, 1)).toBe(1);
    expect(fake!.emitAgentLifecycle('vm1', 2, 1)).toBe(1);
    await waitFor(() => lifecycle.length === 1 && agentLifecycle.length === 1, 5000, 'events');
    expect(lifecycle[0]).toEqual({
      dom: { name: 'vm1', uuid: uuidFromString(vm1.uuid), id: vm1.id },
      event: LifecycleEvent.STOPPED,
      detail: 1,
    });
    expect(agentLifecycle[0]).toEqual({ dom: { name: 'vm1', uuid: uuidFromString(vm1.uuid), id: vm1.id }, state: 2, reason: 1 });
    // Order is kept across many events.
    for (let i = 0; i < 20; i++) fake!.emitLifecycle('vm1', i % 9, i);
    await waitFor(() => lifecycle.length === 21, 5000, '20 more events');
    expect(lifecycle.slice(1).map((m) => m.detail)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('decodes reboot events (the guest reset itself, which no lifecycle event reports)', async () => {
    await startFake();
    const { pool, count } = startPool({ size: 2 });
    const reboots: unknown[] = [];
    pool.on('reboot', (m) => reboots.push(m));
    await waitFor(() => pool.up === 2 && count('eventsSubscribed') === 1, 5000, 'pool ready');
    const vm1 = fake!.domain('vm1');
    expect(fake!.emitReboot('vm1')).toBe(1);
    await waitFor(() => reboots.length === 1, 5000, 'the reboot event');
    expect(reboots[0]).toEqual({ dom: { name: 'vm1', uuid: uuidFromString(vm1.uuid), id: vm1.id } });
  });

  it('after losing the event connection: eventsLost, then eventsSubscribed on another connection, and events flow again', async () => {
    await startFake();
    const { pool, events, count, lifecycle } = startPool({ size: 2 });
    await waitFor(() => pool.up === 2 && count('eventsSubscribed') === 1, 5000, 'pool ready');
    const [carrier] = eventClients();
    fake!.dropClient(carrier!.id);
    await waitFor(() => count('eventsSubscribed') === 2, 5000, 'a new subscription');
    expect(events.indexOf('eventsLost')).toBeGreaterThan(-1);
    expect(events.indexOf('eventsLost')).toBeLessThan(events.lastIndexOf('eventsSubscribed'));
    expect(count('eventsLost')).toBe(1);
    const [next] = eventClients();
    expect(next!.id).not.toBe(carrier!.id);
    await waitFor(() => pool.up === 2, 5000, 'the dropped slot to reconnect');
    // The reconnected slot does not subscribe a second time.
    expect(eventClients()).toHaveLength(1);
    fake!.emitLifecycle('vm1', LifecycleEvent.STARTED, 0);
    await waitFor(() => lifecycle.length === 1, 5000, 'an event after resubscribing');
    expect(lifecycle[0]!.event).toBe(LifecycleEvent.STARTED);
  });

  it('decodes metadata-change events: the domain, the metadata type and the namespace of the element', async () => {
    await startFake();
    const { pool, count } = startPool({ size: 1 });
    const changes: MetadataChangeEventMsg[] = [];
    pool.on('metadataChange', (m) => changes.push(m));
    await waitFor(() => count('eventsSubscribed') === 1, 5000, 'a subscription');
    fake!.emitMetadataChange('vm1', DomainMetadataType.ELEMENT, 'http://openstack.org/xmlns/libvirt/nova/1.1');
    fake!.emitMetadataChange('vm1', DomainMetadataType.TITLE, null);
    await waitFor(() => changes.length === 2, 5000, 'two metadata-change events');
    expect(changes.map((c) => [c.dom.name, c.type, c.nsuri])).toEqual([
      ['vm1', DomainMetadataType.ELEMENT, 'http://openstack.org/xmlns/libvirt/nova/1.1'],
      ['vm1', DomainMetadataType.TITLE, null],
    ]);
  });

  it('subscribes to the other events when libvirtd does not know metadata-change events (before libvirt 3.0)', async () => {
    await startFake({ eventIds: [DomainEventId.LIFECYCLE, DomainEventId.REBOOT, DomainEventId.AGENT_LIFECYCLE] });
    const { pool, count, lifecycle } = startPool({ size: 1 });
    await waitFor(() => count('eventsSubscribed') === 1, 5000, 'a subscription');
    expect(pool.reconnects).toBe(0);
    expect(fake!.eventCallbackCount()).toBe(3);
    fake!.emitLifecycle('vm1', LifecycleEvent.SUSPENDED, 0);
    await waitFor(() => lifecycle.length === 1, 5000, 'an event');
  });

  it('retries the subscription on a fresh connection when REGISTER_ANY fails', async () => {
    await startFake();
    fake!.injectError(RemoteProc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, { code: 1, message: 'internal error: boom' });
    const { pool, count, lifecycle } = startPool({ size: 1 });
    await waitFor(() => pool.up === 1 && count('eventsSubscribed') === 1, 5000, 'a subscription');
    expect(pool.reconnects).toBe(1);
    fake!.emitLifecycle('vm1', LifecycleEvent.SUSPENDED, 0);
    await waitFor(() => lifecycle.length === 1, 5000, 'an event');
  });

  it('close() says CONNECT_CLOSE on every connection; later calls reject', async () => {
    await startFake();
    const { pool, count } = startPool({ size: 3 });
    await waitFor(() => pool.up === 3 && count('eventsSubscribed') === 1, 5000, 'pool ready');
    await pool.close();
    expect(fake!.callCount(RemoteProc.CONNECT_CLOSE)).toBe(3);
    expect(pool.up).toBe(0);
    await waitFor(() => fake!.connectionCount === 0, 5000, 'sockets closed');
    await expect(lookup(pool, 'vm1')).rejects.toBeInstanceOf(ConnectionError);
    expect(count('down')).toBe(0); // a deliberate close is not a connection loss
  });

  it('close() stops reconnecting and leaves no timer behind', async () => {
    await startFake();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const { pool, count } = startPool({ size: 3, backoffInitialMs: 10_000, backoffMaxMs: 10_000 });
    await waitFor(() => pool.up === 3 && count('eventsSubscribed') === 1, 5000, 'pool ready');
    fake!.dropClients();
    await waitFor(() => count('down') === 3, 5000, 'all connections down');
    // Two reconnect timers of 10 s are pending now (the third slot, lost last, waits for them: parked, no timer);
    // close() must cancel both.
    const accepted = fake!.totalConnections;
    const before = timers();
    await pool.close();
    const after = timers();
    expect(before - after).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 50));
    expect(fake!.totalConnections).toBe(accepted);
  });

  it('close() stops a pool that is retrying quickly', async () => {
    await startFake();
    const { pool, count } = startPool({ size: 2, backoffInitialMs: 5, backoffMaxMs: 10 });
    await waitFor(() => pool.up === 2 && count('eventsSubscribed') === 1, 5000, 'pool ready');
    fake!.acceptConnections = false;
    fake!.dropClients();
    const start = fake!.totalConnections;
    await waitFor(() => fake!.totalConnections >= start + 4, 5000, 'retries');
    await pool.close();
    const atClose = fake!.totalConnections;
    await new Promise((r) => setTimeout(r, 200));
    // At most the one attempt per slot that was already connecting may land; retrying every 5-10 ms would add dozens.
    expect(fake!.totalConnections).toBeLessThanOrEqual(atClose + 2);
  });

  it('close() during a connection attempt closes that connection once it opens', async () => {
    await startFake();
    const hold = fake!.holdReplies(RemoteProc.AUTH_LIST);
    const { pool } = startPool({ size: 1 });
    await hold.waitUntilHeld(1);
    const closing = pool.close();
    hold.release();
    await closing;
    await waitFor(() => fake!.connectionCount === 0, 5000, 'the late connection to be closed');
    expect(pool.up).toBe(0);
  });

  it('lets the process exit by itself after close() (no dangling handles)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pool-exit-'));
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
    const script = path.join(dir, 'exit.mts');
    await writeFile(
      script,
      `
import { FakeLibvirtd, waitFor } from ${JSON.stringify(path.join(root, 'test/support/fake-libvirtd.ts'))};
import { LibvirtPool } from ${JSON.stringify(path.join(root, 'src/libvirt/pool.ts'))};
const noop = () => {};
const log = { info: noop, warn: noop, error: noop, debug: noop } as never;
const fake = await FakeLibvirtd.start();
const pool = new LibvirtPool(fake.poolOptions({ size: 2, keepaliveIntervalMs: 20, backoffInitialMs: 5, backoffMaxMs: 20 }), log);
let subscribed = 0;
pool.on('eventsSubscribed', () => subscribed++);
pool.start();
await waitFor(() => pool.up === 2 && subscribed === 1);
fake.dropClients();
await waitFor(() => pool.up === 2 && subscribed === 2);
fake.acceptConnections = false;
fake.dropClients();
await waitFor(() => pool.up === 0);
await pool.close();
await fake.stop();
console.log('closed');
`,
    );
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const killer = setTimeout(() => child.kill('SIGKILL'), 12_000);
        child.on('exit', (c) => {
          clearTimeout(killer);
          resolve(c);
        });
      });
      expect(out).toContain('closed');
      expect(code, out).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 15_000);
});

describe('LibvirtPool room per connection', () => {
  it('keeps at most maxCallsPerConnection calls on a connection and queues the rest in order', async () => {
    await startFake({ serializeAgentCommands: false });
    for (const name of ['vm2', 'vm3', 'vm4', 'vm5']) fake!.addDomain({ name });
    const { pool } = startPool({ size: 1, maxCallsPerConnection: 2 });
    await pool.waitUntilUp(5000);
    const hold = fake!.holdReplies({ program: Program.QEMU, procedure: QemuProc.DOMAIN_AGENT_COMMAND });
    const order: string[] = [];
    const calls = ['vm1', 'vm2', 'vm3', 'vm4', 'vm5'].map((n) => ping(pool, n).then(() => order.push(n)));
    await hold.waitUntilHeld(2);
    await new Promise((r) => setTimeout(r, 50));
    // libvirtd saw two; three wait in the pool, not in libvirtd's unread socket buffer.
    expect(hold.held).toBe(2);
    expect(pool.waiting).toBe(3);
    hold.release();
    await Promise.all(calls);
    expect(order).toEqual(['vm1', 'vm2', 'vm3', 'vm4', 'vm5']);
    expect(pool.waiting).toBe(0);
  });

  it('drops a waiting call whose signal aborts without sending it, and fails waiters when every connection is lost', async () => {
    await startFake();
    const { pool } = startPool({ size: 1, maxCallsPerConnection: 1 });
    await pool.waitUntilUp(5000);
    const hold = fake!.holdReplies({ program: Program.QEMU, procedure: QemuProc.DOMAIN_AGENT_COMMAND });
    const first = ping(pool).catch((e: unknown) => e);
    await hold.waitUntilHeld(1);
    const ac = new AbortController();
    const aborted = pool.call(Remote.DOMAIN_LOOKUP_BY_NAME, { name: 'vm1' }, ac.signal).catch((e: unknown) => e);
    const waiting = lookup(pool, 'vm1').catch((e: unknown) => e);
    expect(pool.waiting).toBe(2);
    ac.abort(new Error('caller gone'));
    expect(((await aborted) as Error).message).toBe('caller gone');
    expect(fake!.callCount(RemoteProc.DOMAIN_LOOKUP_BY_NAME)).toBe(0);
    fake!.dropClients();
    expect(await waiting).toBeInstanceOf(ConnectionError);
    expect(await first).toBeInstanceOf(ConnectionError);
  });
});
