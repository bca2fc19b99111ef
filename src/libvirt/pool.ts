// A few connections to one libvirtd, each reconnecting on its own with backoff. libvirtd serves at most
// max_client_requests (5 by default) calls per connection at once, so slow agents on one connection
// would otherwise stall everybody.
//
// Reconnecting spreads out, so that a libvirtd restart does not bring every pool of every gateway (or every host
// name of one gateway) back at the same instant: each delay is drawn with decorrelated jitter (reconnectDelay), and
// while none of a pool's connections is open only one of them tries (the probe, waiting at most backoffMaxMs / size
// between attempts, so the host is tried as often as by every connection on its own); the others wait for it to
// succeed and then follow, each after its own jittered delay. A restarting libvirtd listens before it accepts (its
// drivers start first): every attempt made meanwhile waits in its listen backlog and all are accepted at once, so at
// most one per pool should be waiting there.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { LibvirtConnection, type ConnectionOptions } from './connection.js';
import { ConnectionError, LibvirtError } from './errors.js';
import type { Packet } from './framing.js';
import { Remote, type CallProcedure } from './procedures.js';
import { DomainEventId, Program, decode, type WireDomain } from './protocol.js';

export interface PoolOptions extends ConnectionOptions {
  size: number;
  /**
   * Calls in flight per connection. libvirtd stops reading a client that has max_client_requests (5)
   * calls running, so it would not see our keepalive answers either and drop us after its keepalive
   * timeout: staying below that keeps every connection readable. Calls past it wait in the pool.
   */
  maxCallsPerConnection: number;
  /** The least reconnect delay, and the first one's scale. */
  backoffInitialMs: number;
  /** The largest reconnect delay. */
  backoffMaxMs: number;
}

/**
 * The next reconnect delay: decorrelated jitter (as in AWS's "Exponential Backoff And Jitter"), uniformly random
 * between initialMs and three times the previous delay, at most maxMs. Never below initialMs, so no slot retries in a
 * tight loop; the spread grows with each failure, and so do the gaps between the connects of many slots that lost
 * libvirtd at the same moment. `previousMs` is initialMs for a first attempt.
 */
export function reconnectDelay(previousMs: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const upper = Math.max(initialMs, previousMs * 3);
  return Math.min(maxMs, initialMs + random() * (upper - initialMs));
}

export interface LifecycleEventMsg {
  dom: WireDomain;
  event: number;
  detail: number;
}
/** The guest reset itself (a reboot from inside, or through its agent): the domain stays running, so no lifecycle event says so. */
export interface RebootEventMsg {
  dom: WireDomain;
}
export interface AgentLifecycleEventMsg {
  dom: WireDomain;
  state: number;
  reason: number;
}
/** virDomainSetMetadata changed the domain's description, title or an application's element (type: DomainMetadataType). */
export interface MetadataChangeEventMsg {
  dom: WireDomain;
  type: number;
  /** The namespace of the element that changed; null for the description and the title. */
  nsuri: string | null;
}

type PoolEvents = {
  lifecycle: [LifecycleEventMsg];
  agentLifecycle: [AgentLifecycleEventMsg];
  reboot: [RebootEventMsg];
  metadataChange: [MetadataChangeEventMsg];
  /** Events are flowing again on a fresh subscription: what happened in between was missed. */
  eventsSubscribed: [];
  /** The connection carrying events went away. */
  eventsLost: [];
  connectionUp: [];
  connectionDown: [Error];
};

interface Slot {
  index: number;
  conn: LibvirtConnection | null;
  /** Failed attempts since the slot's connection was last open. */
  attempt: number;
  /** The last reconnect delay drawn; the next one grows from it. */
  delayMs: number;
  timer: NodeJS.Timeout | null;
  /** An attempt is under way (connect, authenticate, open). */
  connecting: boolean;
  /** Waiting, while the pool is down, for another slot's attempt to reach libvirtd first. */
  parked: boolean;
  lastError: Error | null;
}

export class LibvirtPool extends EventEmitter<PoolEvents> {
  private readonly slots: Slot[];
  private eventConn: LibvirtConnection | null = null;
  /** The event callbacks are registered on eventConn (not merely being registered). */
  private eventsReady = false;
  /** Calls waiting for room on a connection, first come first served. */
  private waiters: { start(conn: LibvirtConnection): void; fail(err: Error): void }[] = [];
  private stopped = false;
  private reconnectCount = 0;

  constructor(
    private readonly opts: PoolOptions,
    private readonly log: Logger,
  ) {
    super();
    this.slots = Array.from({ length: opts.size }, (_, index) => ({
      index,
      conn: null,
      attempt: 0,
      delayMs: opts.backoffInitialMs,
      timer: null,
      connecting: false,
      parked: false,
      lastError: null,
    }));
  }

  /** Opens every connection at once (a gateway starting is no storm); reconnects are spread out from then on. */
  start(): void {
    for (const slot of this.slots) void this.connectSlot(slot, true);
  }

  /** Open connections right now. */
  get up(): number {
    return this.slots.filter((s) => s.conn?.isOpen).length;
  }

  get size(): number {
    return this.slots.length;
  }

  get reconnects(): number {
    return this.reconnectCount;
  }

  get lastError(): Error | null {
    return this.slots.find((s) => s.lastError)?.lastError ?? null;
  }

  /** Resolves once at least one connection is open, or rejects after timeoutMs. */
  async waitUntilUp(timeoutMs: number): Promise<void> {
    if (this.up > 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('connectionUp', onUp);
        reject(new ConnectionError(`no connection to libvirtd within ${timeoutMs} ms: ${this.lastError?.message ?? 'not connected'}`));
      }, timeoutMs);
      const onUp = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once('connectionUp', onUp);
    });
  }

  /** Calls waiting in the pool for room on a connection. */
  get waiting(): number {
    return this.waiters.length;
  }

  private notConnected(): ConnectionError {
    return new ConnectionError(`no connection to libvirtd: ${this.lastError?.message ?? 'not connected yet'}`);
  }

  /** The open connection with the fewest calls in flight, if it has room for one more. */
  private leastBusy(): LibvirtConnection | null {
    let best: LibvirtConnection | null = null;
    for (const slot of this.slots) {
      const c = slot.conn;
      if (c?.isOpen && (!best || c.inFlight < best.inFlight)) best = c;
    }
    return best && best.inFlight < this.opts.maxCallsPerConnection ? best : null;
  }

  /** Sends one call on the least busy open connection, waiting for room when every connection is full. */
  call<A, R>(proc: CallProcedure<A, R>, args: A, signal?: AbortSignal): Promise<R> {
    if (this.up === 0) return Promise.reject(this.notConnected());
    const send = (conn: LibvirtConnection) => conn.call(proc, args, signal);
    const free = this.waiters.length === 0 ? this.leastBusy() : null;
    if (free) return send(free);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<R>((resolve, reject) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(signal!.reason);
      };
      const waiter = {
        start: (conn: LibvirtConnection) => {
          signal?.removeEventListener('abort', onAbort);
          send(conn).then(resolve, reject);
        },
        fail: (err: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Hands freed room to waiting calls, in order. */
  private wakeWaiters(): void {
    for (;;) {
      if (this.waiters.length === 0) return;
      const conn = this.leastBusy();
      if (!conn) return;
      this.waiters.shift()!.start(conn);
    }
  }

  private failWaiters(err: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.fail(err);
  }

  private async connectSlot(slot: Slot, atStart = false): Promise<void> {
    slot.timer = null;
    if (this.stopped) return;
    // The pool is down and another slot is trying already: one attempt per pool at a time.
    if (!atStart && this.up === 0 && this.slots.some((s) => s !== slot && s.connecting)) {
      slot.parked = true;
      return;
    }
    slot.connecting = true;
    let conn: LibvirtConnection;
    try {
      conn = await LibvirtConnection.open(this.opts);
    } catch (err) {
      slot.connecting = false;
      slot.lastError = err as Error;
      this.retryLater(slot);
      return;
    }
    slot.connecting = false;
    if (this.stopped) {
      void conn.close();
      return;
    }
    if (slot.attempt > 0 || slot.lastError) this.reconnectCount++;
    slot.conn = conn;
    slot.attempt = 0;
    slot.delayMs = this.opts.backoffInitialMs;
    slot.lastError = null;
    this.log.info({ connection: slot.index }, 'libvirt connection open');
    conn.on('event', (packet) => this.onEventPacket(conn, packet));
    conn.on('callDone', () => this.wakeWaiters());
    conn.once('close', (reason) => this.onConnectionClosed(slot, conn, reason));
    this.emit('connectionUp');
    this.wakeWaiters();
    // libvirtd answers again: the slots that waited for this one follow, each after its own first delay.
    for (const s of this.slots) {
      if (!s.parked) continue;
      s.parked = false;
      s.delayMs = this.opts.backoffInitialMs;
      this.scheduleReconnect(s, false);
    }
    if (!this.eventConn) await this.subscribeEvents(conn);
  }

  private onConnectionClosed(slot: Slot, conn: LibvirtConnection, reason: Error): void {
    if (slot.conn === conn) slot.conn = null;
    slot.lastError = reason;
    if (this.stopped) return;
    this.log.warn({ connection: slot.index, err: reason.message }, 'libvirt connection lost');
    this.emit('connectionDown', reason);
    // Waiting calls would otherwise wait for a reconnect that may take long; callers retry instead.
    if (this.up === 0) this.failWaiters(this.notConnected());
    if (this.eventConn === conn) {
      this.eventConn = null;
      this.eventsReady = false;
      this.emit('eventsLost');
      const other = this.slots.find((s) => s.conn?.isOpen)?.conn;
      if (other) void this.subscribeEvents(other);
    }
    this.retryLater(slot);
  }

  /**
   * After a failed attempt or a lost connection: try again after a delay, or, while no connection of the pool is
   * open and another slot is trying or about to, wait for that one (parked) instead of trying beside it.
   */
  private retryLater(slot: Slot): void {
    if (this.stopped) return;
    if (this.up === 0 && this.slots.some((s) => s !== slot && (s.connecting || s.timer))) {
      slot.parked = true;
      return;
    }
    this.scheduleReconnect(slot, true);
  }

  /**
   * Connects the slot after its next jittered delay; `failed`: after a failure of its own (counted and logged). While
   * the pool is down this slot is its only one trying, and waits at most backoffMaxMs / size: the host is tried as
   * often as when each connection retried on its own, and is back as soon.
   */
  private scheduleReconnect(slot: Slot, failed: boolean): void {
    if (this.stopped) return;
    const { backoffInitialMs: initial, backoffMaxMs: max } = this.opts;
    const cap = this.up === 0 ? Math.min(max, Math.max(initial, max / this.slots.length)) : max;
    const delay = reconnectDelay(slot.delayMs, initial, cap);
    slot.delayMs = delay;
    if (failed) slot.attempt++;
    if (failed && (slot.attempt === 1 || slot.attempt % 10 === 0)) {
      this.log.warn(
        { connection: slot.index, attempt: slot.attempt, delayMs: Math.round(delay), err: slot.lastError?.message },
        'libvirt connection failed; retrying',
      );
    }
    slot.timer = setTimeout(() => void this.connectSlot(slot), delay);
  }

  /** Whether libvirt's domain events reach the gateway now: false between a lost event connection and the next. */
  get eventsSubscribed(): boolean {
    return this.eventsReady;
  }

  private async subscribeEvents(conn: LibvirtConnection): Promise<void> {
    this.eventConn = conn;
    this.eventsReady = false;
    const register = (eventID: number) =>
      conn.call(Remote.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, { eventID, dom: null }, AbortSignal.timeout(this.opts.connectTimeoutMs));
    try {
      // All at once, on one connection: none is left unregistered while the others' round trips run. METADATA_CHANGE
      // (libvirt 3.0 and later) is a nicety: a daemon that refuses it still gives the others, and what is kept of
      // domains' metadata is then refreshed by lifecycle events alone (DEFINED and the like).
      await Promise.all([
        ...[DomainEventId.LIFECYCLE, DomainEventId.REBOOT, DomainEventId.AGENT_LIFECYCLE].map(register),
        register(DomainEventId.METADATA_CHANGE).catch((err: unknown) => {
          if (!(err instanceof LibvirtError)) throw err;
          this.log.info(
            { err: err.message },
            'libvirtd has no metadata-change events: domain metadata is re-read on lifecycle events only',
          );
        }),
      ]);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'subscribing to libvirt domain events failed');
      if (this.eventConn === conn) this.eventConn = null;
      conn.destroy(new ConnectionError(`event subscription failed: ${(err as Error).message}`));
      return;
    }
    if (this.eventConn !== conn) return;
    this.eventsReady = true;
    this.emit('eventsSubscribed');
  }

  private onEventPacket(conn: LibvirtConnection, { header, body }: Packet): void {
    if (conn !== this.eventConn || header.program !== Program.REMOTE) return;
    try {
      if (header.procedure === Remote.DOMAIN_EVENT_CALLBACK_LIFECYCLE.procedure) {
        const m = decode(Remote.DOMAIN_EVENT_CALLBACK_LIFECYCLE.body, body);
        this.emit('lifecycle', { dom: m.dom, event: m.event, detail: m.detail });
      } else if (header.procedure === Remote.DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE.procedure) {
        const m = decode(Remote.DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE.body, body);
        this.emit('agentLifecycle', { dom: m.dom, state: m.state, reason: m.reason });
      } else if (header.procedure === Remote.DOMAIN_EVENT_CALLBACK_REBOOT.procedure) {
        this.emit('reboot', { dom: decode(Remote.DOMAIN_EVENT_CALLBACK_REBOOT.body, body).dom });
      } else if (header.procedure === Remote.DOMAIN_EVENT_CALLBACK_METADATA_CHANGE.procedure) {
        const m = decode(Remote.DOMAIN_EVENT_CALLBACK_METADATA_CHANGE.body, body);
        this.emit('metadataChange', { dom: m.dom, type: m.type, nsuri: m.nsuri });
      }
    } catch (err) {
      this.log.warn({ procedure: header.procedure, err: (err as Error).message }, 'undecodable libvirt event ignored');
    }
  }

  /** Stops reconnecting and closes every connection. */
  async close(): Promise<void> {
    this.stopped = true;
    this.failWaiters(new ConnectionError('the libvirt connection pool is closed'));
    const closing: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (slot.timer) clearTimeout(slot.timer);
      slot.timer = null;
      slot.parked = false;
      if (slot.conn) closing.push(slot.conn.close());
      slot.conn = null;
    }
    this.eventConn = null;
    this.eventsReady = false;
    await Promise.all(closing);
  }
}
