// FakeLibvirtd itself: the parts (server.ts, procedures.ts, agent.ts, faults.ts, domains.ts) put together behind the
// API the tests use. See test/support/fake-libvirtd.ts for the API in short.
import { rm } from 'node:fs/promises';
import type net from 'node:net';
import type { ConnectionOptions, Transport } from '../../../src/libvirt/connection.js';
import type { Packet } from '../../../src/libvirt/framing.js';
import type { PoolOptions } from '../../../src/libvirt/pool.js';
import { Keepalive, Remote } from '../../../src/libvirt/procedures.js';
import {
  DomainEventId,
  MessageStatus,
  MessageType,
  PROTOCOL_VERSION,
  Program,
  VirErrorCode,
  encode,
  encodePacket,
  remoteErrorCodec,
  type Header,
} from '../../../src/libvirt/protocol.js';
import { trackedSleep } from '../tracked-sleep.js';
import { FakeAgents } from './agent.js';
import { defaultAgentHandler } from './default-agent.js';
import { isActive, newDomain, toWire } from './domains.js';
import { CallFaults, type CallMatch } from './faults.js';
import { dispatch, type ProcedureHost } from './procedures.js';
import { attachClient, keepalivePacket, sendPacket, startListener, type ClientState, type Listener } from './server.js';
import {
  FakeRpcError,
  VIR_ERR_LEVEL_ERROR,
  type AgentHandler,
  type AgentLogEntry,
  type FakeCall,
  type FakeClientInfo,
  type FakeDomain,
  type FakeLibvirtdOptions,
  type ReplyHold,
} from './types.js';

export class FakeLibvirtd {
  /** Mutable: tests may push, edit or remove domains at any time (see also addDomain / setState / setAgent). */
  domains: FakeDomain[] = [];
  /** Answers agent commands; replace it per test. See defaultAgentHandler. */
  agentHandler: AgentHandler;
  /** Every call received, in arrival order, including calls still waiting for a worker (keepalive messages excluded). */
  readonly calls: FakeCall[] = [];
  /** Every command that reached the agent handler, in order. */
  readonly agentLog: AgentLogEntry[] = [];

  /** Fault injection: do not answer keepalive PINGs (a hung daemon). */
  ignoreKeepalive = false;
  /** Fault injection: write every outgoing packet in pieces ('bytes' = one byte per write, 'random' = 1..7 bytes), a loop turn apart. */
  splitWrites: false | 'bytes' | 'random' = false;
  /** Fault injection: gather the packets produced within one loop turn and send them in a single write. */
  coalesce = false;
  /** Fault injection: when false, new connections are accepted and closed at once (libvirtd going away). */
  acceptConnections = true;
  /** Fault injection: a delay (ms) before each call's reply is sent; see also setReplyDelay / holdReplies. */
  replyDelay: ((call: FakeCall) => number) | null = null;

  pingsReceived = 0;
  pongsReceived = 0;
  /** Connections ever accepted (including refused ones; over TLS, those that passed the certificate check). */
  totalConnections = 0;

  readonly maxClientRequests: number;
  readonly serializeAgentCommands: boolean;
  readonly agentJobWaitMs: number;
  readonly agentSecondMs: number;
  readonly agentDefaultTimeoutSeconds: number;

  /** The unix socket path, or null when listening on TCP. */
  readonly socketPath: string | null;
  /** The TCP port, or null when listening on a unix socket. */
  readonly port: number | null;

  private readonly server: net.Server;
  private readonly tempDir: string | null;
  private readonly clientSet = new Set<ClientState>();
  /** Every socket of the listener, including TLS ones still in the handshake or refused: stop() closes them all. */
  private readonly rawSockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly faults = new CallFaults();
  private readonly agents: FakeAgents;
  private readonly host: ProcedureHost;
  private nextClientId = 1;
  private nextCallbackId = 1;
  private nextDomainId = 1;
  private stopped = false;

  private constructor(
    listener: Listener,
    private readonly opts: FakeLibvirtdOptions,
  ) {
    this.server = listener.server;
    this.socketPath = listener.socketPath;
    this.port = listener.port;
    this.tempDir = listener.tempDir;
    this.agentHandler = opts.agentHandler ?? defaultAgentHandler;
    this.maxClientRequests = opts.maxClientRequests ?? 5;
    this.serializeAgentCommands = opts.serializeAgentCommands ?? true;
    this.agentJobWaitMs = opts.agentJobWaitMs ?? 30_000;
    this.agentSecondMs = opts.agentSecondMs ?? 1000;
    this.agentDefaultTimeoutSeconds = opts.agentDefaultTimeoutSeconds ?? 5;
    const settings = {
      serialize: this.serializeAgentCommands,
      jobWaitMs: this.agentJobWaitMs,
      secondMs: this.agentSecondMs,
      defaultTimeoutSeconds: this.agentDefaultTimeoutSeconds,
    };
    this.agents = new FakeAgents(settings, () => this.agentHandler, this.agentLog, this.timers);
    const self = this;
    this.host = {
      get domains() {
        return self.domains;
      },
      options: opts,
      agents: this.agents,
      nextCallbackId: () => this.nextCallbackId++,
    };
    for (const d of opts.domains ?? []) this.addDomain(d);
    this.server.on('connection', (raw: net.Socket) => {
      this.rawSockets.add(raw);
      raw.once('close', () => this.rawSockets.delete(raw));
    });
    // A TLS client becomes an RPC client only once the handshake is done and the confirmation byte sent.
    if (opts.tls) this.server.on('libvirtClient', (socket: net.Socket) => this.onConnection(socket));
    else this.server.on('connection', (socket) => this.onConnection(socket));
  }

  /** Starts listening: on a unix socket in a new temp dir (default), on opts.socketPath, or on 127.0.0.1:0 with tcp or tls. */
  static async start(opts: FakeLibvirtdOptions = {}): Promise<FakeLibvirtd> {
    return new FakeLibvirtd(await startListener(opts), opts);
  }

  // ----- where to connect --------------------------------------------------------------------------------

  /** Where to connect. A TLS fake needs opts.tls.client for this (or pass your own transport to connectionOptions). */
  get transport(): Transport {
    if (this.socketPath !== null) return { kind: 'unix', path: this.socketPath };
    const tlsOpts = this.opts.tls;
    if (!tlsOpts) return { kind: 'tcp', host: '127.0.0.1', port: this.port! };
    if (!tlsOpts.client) throw new Error('FakeLibvirtd: a TLS fake knows no client files; give opts.tls.client or a transport of your own');
    return { kind: 'tls', host: '127.0.0.1', port: this.port!, ...tlsOpts.client, verify: true };
  }

  /**
   * A libvirt URI the gateway's config can use (qemu+unix:///system?socket=..., qemu+tcp://127.0.0.1:port/system, or
   * qemu+tls://127.0.0.1:port/system, whose files the host's config entry must then give).
   */
  get uri(): string {
    if (this.socketPath !== null) return `qemu+unix:///system?socket=${this.socketPath}`;
    return `qemu+${this.opts.tls ? 'tls' : 'tcp'}://127.0.0.1:${this.port}/system`;
  }

  /** ConnectionOptions for LibvirtConnection.open: 2 s connect timeout, our own keepalive off unless overridden. */
  connectionOptions(overrides: Partial<ConnectionOptions> = {}): ConnectionOptions {
    return {
      transport: overrides.transport ?? this.transport,
      name: 'qemu:///system',
      connectTimeoutMs: 2000,
      keepaliveIntervalMs: 0,
      keepaliveCount: 5,
      ...overrides,
    };
  }

  /** PoolOptions for LibvirtPool: size 2, 4 calls per connection, backoff 10..50 ms unless overridden. */
  poolOptions(overrides: Partial<PoolOptions> = {}): PoolOptions {
    return {
      ...this.connectionOptions(overrides.transport ? { transport: overrides.transport } : {}),
      size: 2,
      maxCallsPerConnection: 4,
      backoffInitialMs: 10,
      backoffMaxMs: 50,
      ...overrides,
    };
  }

  // ----- domains -----------------------------------------------------------------------------------------

  /** Adds a domain: defaults running, agent connected, random UUID, a fresh id when running. */
  addDomain(d: Partial<FakeDomain> & { name: string }): FakeDomain {
    const dom = newDomain(d, () => this.nextDomainId++);
    this.domains.push(dom);
    return dom;
  }

  /** The domain named so; throws when there is none. */
  domain(name: string): FakeDomain {
    const d = this.domains.find((x) => x.name === name);
    if (!d) throw new Error(`fake libvirtd has no domain '${name}'`);
    return d;
  }

  removeDomain(name: string): FakeDomain {
    const d = this.domain(name);
    this.domains.splice(this.domains.indexOf(d), 1);
    return d;
  }

  /** Changes a domain's state (a fresh id when it becomes active, -1 when it stops). Emits no event: see emitLifecycle. */
  setState(name: string, state: number, reason = 1): FakeDomain {
    const d = this.domain(name);
    if (isActive(state) && d.id < 0) d.id = this.nextDomainId++;
    if (!isActive(state)) d.id = -1;
    d.state = state;
    d.reason = reason;
    return d;
  }

  /** Replaces what the domain's <metadata> holds (undefined: none at all). Emits no event: see emitMetadataChange. */
  setMetadata(name: string, metadata: string | undefined): FakeDomain {
    const d = this.domain(name);
    if (metadata === undefined) delete d.metadata;
    else d.metadata = metadata;
    return d;
  }

  /** Changes a domain's agent channel. Emits no event: see emitAgentLifecycle. */
  setAgent(name: string, agent: FakeDomain['agent']): FakeDomain {
    const d = this.domain(name);
    d.agent = agent;
    return d;
  }

  // ----- observation -------------------------------------------------------------------------------------

  /** Open client connections. */
  get clients(): FakeClientInfo[] {
    return [...this.clientSet];
  }

  get connectionCount(): number {
    return this.clientSet.size;
  }

  /** Commands that reached the agent handler. */
  get agentCommandCount(): number {
    return this.agentLog.length;
  }

  /** Calls received of one procedure. */
  callCount(procedure: number, program: number = Program.REMOTE): number {
    return this.calls.filter((c) => c.procedure === procedure && c.program === program).length;
  }

  /** Event callbacks registered, over all clients (optionally of one eventID). */
  eventCallbackCount(eventID?: number): number {
    let n = 0;
    for (const c of this.clientSet) for (const cb of c.callbacks.values()) if (eventID === undefined || cb.eventID === eventID) n++;
    return n;
  }

  /** DOMAIN_AGENT_COMMAND calls for this domain received and not yet answered. */
  agentInFlight(domain: string): number {
    return this.agents.inFlight(domain);
  }

  /** The most DOMAIN_AGENT_COMMAND calls for this domain that were ever in flight at once (what the client sent concurrently). */
  agentPeakInFlight(domain: string): number {
    return this.agents.peakInFlight(domain);
  }

  // ----- fault injection (faults.ts) ---------------------------------------------------------------------

  /** Delays every reply of one procedure by ms (0 removes the delay). Combined with `replyDelay` (the larger wins). */
  setReplyDelay(procedure: number, ms: number, program: number = Program.REMOTE): void {
    this.faults.setReplyDelay(procedure, ms, program);
  }

  /**
   * Holds back the replies of matching calls (the call is processed, its reply waits) until released.
   * match: a procedure number of the REMOTE program, { program, procedure }, or a predicate.
   */
  holdReplies(match: CallMatch): ReplyHold {
    return this.faults.holdReplies(match);
  }

  /** The next `times` calls of this procedure fail with this libvirt error instead of being processed. */
  injectError(procedure: number, error: { code: number; message: string }, opts: { program?: number; times?: number } = {}): void {
    this.faults.injectError(procedure, error, opts);
  }

  /** Sends a keepalive PING to every client (each answers with a PONG, counted in pongsReceived). */
  sendKeepalivePing(): void {
    for (const c of this.clientSet) this.send(c, keepalivePacket(Keepalive.PING));
  }

  /** Writes raw bytes to every client, bypassing framing (to test protocol errors). */
  sendRaw(data: Buffer): void {
    for (const c of this.clientSet) this.send(c, data);
  }

  /** Destroys one client's socket (FakeClientInfo.id); returns false when there is no such open client. */
  dropClient(id: number): boolean {
    const c = [...this.clientSet].find((x) => x.id === id);
    c?.socket.destroy();
    return c !== undefined;
  }

  /** Destroys every client socket at once: calls in flight never get a reply. */
  dropClients(): void {
    for (const c of [...this.clientSet]) c.socket.destroy();
  }

  // ----- events ------------------------------------------------------------------------------------------

  /** Sends a lifecycle event (virDomainEventType, detail) to every client that registered for it; returns how many. */
  emitLifecycle(domain: string | FakeDomain, event: number, detail = 0): number {
    const dom = typeof domain === 'string' ? this.domain(domain) : domain;
    const msg = Remote.DOMAIN_EVENT_CALLBACK_LIFECYCLE;
    return this.emitEvent(DomainEventId.LIFECYCLE, dom, msg.procedure, (callbackID) =>
      encode(msg.body, { callbackID, dom: toWire(dom), event, detail }),
    );
  }

  /** Sends an agent lifecycle event (state 1 connected / 2 disconnected, reason 0 unknown / 1 domain started / 2 channel); returns how many clients got it. */
  emitAgentLifecycle(domain: string | FakeDomain, state: number, reason = 2): number {
    const dom = typeof domain === 'string' ? this.domain(domain) : domain;
    const msg = Remote.DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE;
    return this.emitEvent(DomainEventId.AGENT_LIFECYCLE, dom, msg.procedure, (callbackID) =>
      encode(msg.body, { callbackID, dom: toWire(dom), state, reason }),
    );
  }

  /** Sends a reboot event (the guest reset itself: libvirt's VIR_DOMAIN_EVENT_ID_REBOOT, no lifecycle event); returns how many clients got it. */
  emitReboot(domain: string | FakeDomain): number {
    const dom = typeof domain === 'string' ? this.domain(domain) : domain;
    const msg = Remote.DOMAIN_EVENT_CALLBACK_REBOOT;
    return this.emitEvent(DomainEventId.REBOOT, dom, msg.procedure, (callbackID) => encode(msg.body, { callbackID, dom: toWire(dom) }));
  }

  /** Sends a metadata-change event (type: DomainMetadataType; nsuri: the element's namespace, null for title and description). */
  emitMetadataChange(domain: string | FakeDomain, type: number, nsuri: string | null): number {
    const dom = typeof domain === 'string' ? this.domain(domain) : domain;
    const msg = Remote.DOMAIN_EVENT_CALLBACK_METADATA_CHANGE;
    return this.emitEvent(DomainEventId.METADATA_CHANGE, dom, msg.procedure, (callbackID) =>
      encode(msg.body, { callbackID, dom: toWire(dom), type, nsuri }),
    );
  }

  private emitEvent(eventID: number, dom: FakeDomain, procedure: number, body: (callbackID: number) => Buffer): number {
    let sent = 0;
    for (const c of this.clientSet) {
      for (const [callbackID, cb] of c.callbacks) {
        if (cb.eventID !== eventID || (cb.domain !== null && cb.domain !== dom.uuid)) continue;
        const header: Header = {
          program: Program.REMOTE,
          version: PROTOCOL_VERSION,
          procedure,
          type: MessageType.MESSAGE,
          serial: 0,
          status: MessageStatus.OK,
        };
        this.send(c, encodePacket(header, body(callbackID)));
        sent++;
      }
    }
    return sent;
  }

  // ----- lifecycle ---------------------------------------------------------------------------------------

  /**
   * Back to a fresh state for a fake shared across tests: releases held replies, clears delays, injected errors,
   * fault flags, logs and counters, restores the agent handler given at start (or the default), and empties the
   * domains unless keepDomains. Connections stay open (their event callbacks too).
   */
  reset(opts: { keepDomains?: boolean } = {}): void {
    this.faults.reset();
    this.replyDelay = null;
    this.ignoreKeepalive = false;
    this.splitWrites = false;
    this.coalesce = false;
    this.acceptConnections = true;
    this.agentHandler = this.opts.agentHandler ?? defaultAgentHandler;
    this.calls.length = 0;
    this.agentLog.length = 0;
    this.agents.resetPeaks();
    this.pingsReceived = 0;
    this.pongsReceived = 0;
    if (!opts.keepDomains) this.domains = [];
  }

  /** Closes the listener and every client, cancels every timer, drops held replies and removes the temp dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.faults.drop();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.clientSet) c.socket.destroy();
    for (const s of this.rawSockets) s.destroy();
    await closed;
    if (this.tempDir) await rm(this.tempDir, { recursive: true, force: true });
  }

  // ----- connection handling -----------------------------------------------------------------------------

  private onConnection(socket: net.Socket): void {
    this.totalConnections++;
    if (this.stopped || !this.acceptConnections) {
      socket.destroy();
      return;
    }
    const client = attachClient(
      this.nextClientId++,
      socket,
      (c, p) => this.onPacket(c, p),
      (c) => this.clientSet.delete(c),
    );
    this.clientSet.add(client);
  }

  private onPacket(client: ClientState, packet: Packet): void {
    const { header } = packet;
    if (header.program === Program.KEEPALIVE) {
      if (header.procedure === Keepalive.PING.procedure) {
        this.pingsReceived++;
        if (!this.ignoreKeepalive) this.send(client, keepalivePacket(Keepalive.PONG));
      } else if (header.procedure === Keepalive.PONG.procedure) {
        this.pongsReceived++;
      }
      return;
    }
    if (header.type !== MessageType.CALL) return;
    this.calls.push({ program: header.program, procedure: header.procedure, serial: header.serial, clientId: client.id });
    if (client.running < this.maxClientRequests) void this.runCall(client, packet);
    else client.waiting.push(packet);
  }

  /** One call: processed (procedures.ts) or failed by an injected error, then its reply delayed or held (faults.ts). */
  private async runCall(client: ClientState, packet: Packet): Promise<void> {
    client.running++;
    const { header } = packet;
    const call: FakeCall = { program: header.program, procedure: header.procedure, serial: header.serial, clientId: client.id };
    let status: number = MessageStatus.OK;
    let body: Buffer;
    try {
      const injected = this.faults.takeInjected(call);
      if (injected) throw new FakeRpcError(injected.code, injected.message);
      body = await dispatch(this.host, client, call, packet.body);
    } catch (err) {
      status = MessageStatus.ERROR;
      const e =
        err instanceof FakeRpcError ? err : new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: ${(err as Error).message}`);
      body = encode(remoteErrorCodec, {
        code: e.code,
        domain: e.errDomain,
        message: e.message,
        level: VIR_ERR_LEVEL_ERROR,
        dom: null,
        str1: null,
        str2: null,
        str3: null,
        int1: -1,
        int2: -1,
        net: null,
      });
    }
    const delay = Math.max(this.faults.delayOf(call), this.replyDelay?.(call) ?? 0);
    if (delay > 0) await trackedSleep(this.timers, delay);
    await this.faults.passGates(call);
    if (this.stopped) return;
    this.send(client, encodePacket({ ...header, type: MessageType.REPLY, status }, body));
    client.running--;
    const next = client.waiting.shift();
    if (next) void this.runCall(client, next);
  }

  private send(client: ClientState, packet: Buffer): void {
    if (!this.stopped) sendPacket(client, packet, this);
  }
}
