// An in-process fake libvirtd that speaks libvirt's real RPC wire protocol (REMOTE, QEMU and KEEPALIVE
// programs) over a real unix or TCP socket. It reuses the codecs of src/libvirt/protocol.ts and the
// PacketDecoder of src/libvirt/framing.ts, so the gateway's client talks to it exactly as to libvirtd.
//
//   const fake = await FakeLibvirtd.start();                 // unix socket in a temp dir; { tcp: true } for 127.0.0.1:<port>;
//                                                            // { tls: { cert, key, ca, requestCert } } for TLS on 127.0.0.1:<port>
//   fake.addDomain({ name: 'vm1' });                          // running, agent connected, random UUID
//   const pool = new LibvirtPool(fake.poolOptions({ size: 2 }), log);   // or fake.connectionOptions(), or fake.uri for config
//   ...
//   await fake.stop();                                        // closes everything, cancels timers, removes the temp dir
//
// API in short (details on each member):
//   where:      socketPath | port, transport, uri, connectionOptions(o?), poolOptions(o?)
//   domains:    domains (mutable), addDomain(d), domain(name), removeDomain(name), setState(name, state, reason?),
//               setAgent(name, 'connected' | 'disconnected' | 'none')
//   agent:      agentHandler (default defaultAgentHandler), agentLog, agentCommandCount, agentInFlight(name),
//               agentPeakInFlight(name)
//   observing:  calls, callCount(proc, program?), clients, connectionCount, totalConnections, eventCallbackCount(id?),
//               pingsReceived, pongsReceived
//   events:     emitLifecycle(dom, event, detail?), emitAgentLifecycle(dom, state, reason?) -> clients notified
//   faults:     holdReplies(match) -> ReplyHold, setReplyDelay(proc, ms, program?), replyDelay, injectError(proc, err, o?),
//               splitWrites, coalesce, ignoreKeepalive, acceptConnections, sendKeepalivePing(), sendRaw(bytes),
//               dropClient(id), dropClients()
//   lifecycle:  reset({ keepDomains? }), stop()
//   helpers:    waitFor(cond, timeoutMs?, what?), defaultAgentHandler, domainXml(d), DomainState
//
// What it implements, with libvirt's error codes and wording:
//   AUTH_LIST (opts.authTypes, default [0]), AUTH_POLKIT (45 when opts.polkitDenied), CONNECT_OPEN, CONNECT_CLOSE,
//   CONNECT_SUPPORTS_FEATURE, CONNECT_LIST_ALL_DOMAINS (ACTIVE / INACTIVE filters), DOMAIN_LOOKUP_BY_NAME / _BY_UUID
//   (42 "Domain not found: no domain with matching name 'x'"), DOMAIN_GET_STATE, DOMAIN_GET_XML_DESC (minimal live XML
//   with the guest agent channel and its state), CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY / DEREGISTER_ANY, and QEMU
//   DOMAIN_AGENT_COMMAND: 55 not running, 74 agent not configured, 86 agent not connected or timed out, 1 "internal
//   error: unable to execute QEMU agent command 'X': desc" for an agent error, 68 when the domain's agent job stays busy.
//   Any other procedure: 3 (no support). Calls before authentication (39) or before CONNECT_OPEN (1 "connection not
//   open") are refused as libvirtd refuses them. Keepalive PINGs are answered with PONGs unless `ignoreKeepalive`.
//
// Like libvirtd it runs at most `maxClientRequests` (default 5) calls per connection at once (the rest wait in order;
// unlike libvirtd it still answers keepalive meanwhile) and one agent command per domain at a time (the agent job);
// both can be turned off through the options.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextLoopTurn } from 'node:timers/promises';
import tls from 'node:tls';
import { parseAgentJson } from '../../src/agent/core/agent-json.js';
import type { ConnectionOptions, Transport } from '../../src/libvirt/connection.js';
import { PacketDecoder, type Packet } from '../../src/libvirt/framing.js';
import type { PoolOptions } from '../../src/libvirt/pool.js';
import {
  AuthType,
  DomainEventId,
  DriverFeature,
  KeepaliveProc,
  MessageStatus,
  MessageType,
  PROTOCOL_VERSION,
  Program,
  QemuProc,
  RemoteProc,
  VirErrorCode,
  codecs,
  decode,
  encode,
  encodePacket,
  remoteErrorCodec,
  uuidFromString,
  uuidToString,
  type Header,
  type WireDomain,
} from '../../src/libvirt/protocol.js';
import { fixtureReply } from './qga-fixtures.js';
import { trackedSleep } from './tracked-sleep.js';

// ---------------------------------------------------------------------------------------------------------
// Public types

/** virDomainState values the fake cares about. */
export const DomainState = { NOSTATE: 0, RUNNING: 1, BLOCKED: 2, PAUSED: 3, SHUTDOWN: 4, SHUTOFF: 5, CRASHED: 6, PMSUSPENDED: 7 } as const;

export interface FakeDomain {
  name: string;
  /** Canonical string form, e.g. 5f3c0e7a-1b2c-4d5e-8f90-112233445566. */
  uuid: string;
  /** libvirt's id: a positive number while running, -1 otherwise. */
  id: number;
  /** virDomainState: 1 running, 3 paused, 5 shutoff (see DomainState). */
  state: number;
  /** The state reason DOMAIN_GET_STATE answers (default 1: booted / shutdown). */
  reason: number;
  /** The guest agent channel: 'none' = the domain has no agent channel configured at all. */
  agent: 'connected' | 'disconnected' | 'none';
}

/** The JSON command handed to the agent (virDomainQemuAgentCommand's cmd, parsed). */
export interface AgentCommand {
  execute: string;
  arguments?: unknown;
  [key: string]: unknown;
}

export type AgentReply =
  /** The agent answered: the caller gets JSON.stringify({ return }) exactly as libvirt forwards it. */
  | { return: unknown }
  /**
   * The agent's reply text, as recorded from a real agent (test/fixtures/qga): a {"return": ...} reaches the caller
   * verbatim (64-bit integers as written), an {"error": ...} is folded into libvirt's error as for { error }.
   */
  | { raw: string }
  /** The agent answered an error: libvirt turns it into code 1 "internal error: unable to execute QEMU agent command 'X': desc". */
  | { error: { class: string; desc?: string } }
  /** libvirt itself fails the call with this code and (full) message, e.g. 86 "Guest agent is not responding: ...". */
  | { libvirtError: { code: number; message: string } }
  /** The agent never answers: libvirt's timeout applies (86 "Guest agent is not responding: Guest agent not available for now"; -2 blocks forever). */
  | { hang: true };

export type AgentHandler = (domain: FakeDomain, command: AgentCommand, timeoutSeconds: number) => AgentReply | Promise<AgentReply>;

/** One RPC call received (keepalive messages are not calls). */
export interface FakeCall {
  program: number;
  procedure: number;
  serial: number;
  /** FakeClient.id of the connection it came on. */
  clientId: number;
}

/** One command that reached the agent handler (calls refused by libvirt's checks never get here). */
export interface AgentLogEntry {
  domain: string;
  execute: string;
  arguments?: unknown;
  timeoutSeconds: number;
  clientId: number;
}

/** A read-only view of one client connection. */
export interface FakeClientInfo {
  readonly id: number;
  readonly authenticated: boolean;
  /** CONNECT_OPEN succeeded (and CONNECT_CLOSE did not follow). */
  readonly opened: boolean;
  /** The name CONNECT_OPEN asked for. */
  readonly openedName: string | null;
  /** The client asked CONNECT_SUPPORTS_FEATURE(PROGRAM_KEEPALIVE). */
  readonly keepaliveRequested: boolean;
  /** Registered event callbacks: callbackID -> eventID and domain filter (null = all domains). */
  readonly callbacks: ReadonlyMap<number, { eventID: number; domain: string | null }>;
  /** Calls being worked on or waiting for a worker. */
  readonly inFlight: number;
}

export interface FakeLibvirtdOptions {
  /** Listen on this unix socket path instead of `<new temp dir>/libvirt-sock`. */
  socketPath?: string;
  /** Listen on 127.0.0.1:<random port> instead of a unix socket. */
  tcp?: boolean;
  /** Listen with TLS on 127.0.0.1:<random port>, as libvirtd's TLS port does (see FakeTlsOptions). */
  tls?: FakeTlsOptions;
  /** What AUTH_LIST answers (AuthType values). Default [0] (none). [2] = polkit, [1] = SASL only (unsupported by the client). */
  authTypes?: number[];
  /** AUTH_POLKIT refuses (error 45) instead of succeeding. */
  polkitDenied?: boolean;
  /** Domains to start with (copied). */
  domains?: Array<Partial<FakeDomain> & { name: string }>;
  /** libvirtd's max_client_requests: calls run at once per connection, the rest wait in order. Default 5; Infinity = unlimited. */
  maxClientRequests?: number;
  /** Run one agent command per domain at a time, like libvirt's agent job. Default true. */
  serializeAgentCommands?: boolean;
  /** How long an agent command waits for the domain's agent job before error 68. Default 30000 (libvirt's). */
  agentJobWaitMs?: number;
  /** The length of one "second" of agent timeouts, so tests can shrink them. Default 1000. */
  agentSecondMs?: number;
  /** Timeout used when the caller passes -1 (VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT), in agent seconds. Default 5. */
  agentDefaultTimeoutSeconds?: number;
  agentHandler?: AgentHandler;
}

/**
 * libvirtd's TLS listener: after the handshake it checks the client's certificate itself and sends one byte, 1, when it
 * accepts it; it closes the socket when it does not (virNetServerClientCheckAccess).
 */
export interface FakeTlsOptions {
  /** The server's certificate, key and the CA that signs client certificates (PEM contents). */
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
  /** Ask for a client certificate and close the connection unless it verifies against ca (libvirtd's default). */
  requestCert: boolean;
  /** Send this byte instead of 1 after an accepted handshake (a daemon that refuses us with a byte instead of a close). */
  rejectByte?: number;
  /** The client's files, so that `transport` / `connectionOptions()` point at this listener ready to use. */
  client?: { certFile: string; keyFile: string; caFile: string };
}

/** A gate holding back the replies of matching calls until release(). From FakeLibvirtd.holdReplies(). */
export interface ReplyHold {
  /** Replies held right now. */
  readonly held: number;
  /** Resolves once at least n replies are being held. */
  waitUntilHeld(n: number, timeoutMs?: number): Promise<void>;
  /** Lets the oldest held reply go (returns false when none is held); the gate stays. */
  releaseOne(): boolean;
  /** Lets every held reply go, oldest first, and stops holding new ones. */
  release(): void;
}

/** libvirt's virErrorDomain values used in error replies. */
const ErrFrom = { RPC: 7, QEMU: 10, REMOTE: 13 } as const;
const VIR_ERR_INVALID_ARG = 8;
const VIR_ERR_RPC = 39;
const VIR_ERR_AUTH_FAILED = 45;
const VIR_ERR_LEVEL_ERROR = 2;
const LIST_ACTIVE = 1;
const LIST_INACTIVE = 2;

/** A libvirt error the fake answers; thrown by procedure handlers. */
export class FakeRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly errDomain: number = ErrFrom.QEMU,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers exported for tests

/** Polls cond every few ms until it is true; rejects after timeoutMs with `what` in the message. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const SUPPORTED_AGENT_COMMANDS = [
  'guest-ping',
  'guest-sync',
  'guest-sync-delimited',
  'guest-info',
  'guest-get-host-name',
  'guest-get-osinfo',
  'guest-get-time',
  'guest-get-timezone',
  'guest-network-get-interfaces',
  'guest-exec',
  'guest-exec-status',
  'guest-file-open',
  'guest-file-read',
  'guest-file-write',
  'guest-file-close',
  'guest-shutdown',
];

/**
 * The default agent: guest-ping, guest-sync(-delimited), guest-info (with supported_commands),
 * guest-get-host-name (the domain's name), guest-get-osinfo, guest-get-time, guest-get-timezone and
 * guest-network-get-interfaces (replies recorded from qemu-ga 10.0.13, test/fixtures/qga/10.0).
 * Anything else: CommandNotFound "The command X has not been found", as qemu-ga answers.
 */
export const defaultAgentHandler: AgentHandler = (domain, command) => {
  const args = (command.arguments ?? {}) as Record<string, unknown>;
  switch (command.execute) {
    case 'guest-ping':
      return { return: {} };
    case 'guest-sync':
    case 'guest-sync-delimited':
      return { return: args.id };
    case 'guest-info':
      return {
        return: {
          version: '8.2.2',
          supported_commands: SUPPORTED_AGENT_COMMANDS.map((name) => ({
            name,
            enabled: true,
            'success-response': name !== 'guest-shutdown',
          })),
        },
      };
    case 'guest-get-host-name':
      return { return: { 'host-name': domain.name } };
    // Recorded from Debian 13's qemu-ga 10.0.13 (test/fixtures/qga/10.0/), as libvirt hands them on.
    case 'guest-get-osinfo':
      return fixtureReply('10.0', 'guest-get-osinfo');
    case 'guest-get-time':
      // As qemu-ga sends it (whole microseconds, a JSON number past 2^53), of the host's clock.
      return { raw: `{"return":${BigInt(Date.now()) * 1_000_000n}}` };
    case 'guest-get-timezone':
      return fixtureReply('10.0', 'guest-get-timezone');
    case 'guest-network-get-interfaces':
      return fixtureReply('10.0', 'guest-network-get-interfaces');
    default:
      return { error: { class: 'CommandNotFound', desc: `The command ${command.execute} has not been found` } };
  }
};

// ---------------------------------------------------------------------------------------------------------
// Internals

interface ClientState extends FakeClientInfo {
  id: number;
  socket: net.Socket;
  decoder: PacketDecoder;
  authenticated: boolean;
  opened: boolean;
  openedName: string | null;
  keepaliveRequested: boolean;
  callbacks: Map<number, { eventID: number; domain: string | null }>;
  /** Calls running now. */
  running: number;
  /** Calls waiting for a free worker slot (max_client_requests). */
  waiting: Packet[];
  inFlight: number;
  outbox: Buffer[];
  pumping: boolean;
}

interface HoldGate {
  match: (call: FakeCall) => boolean;
  queue: Array<() => void>;
  active: boolean;
}

/** One agent job per domain, FIFO, with a bounded wait. */
class JobLock {
  private busy = false;
  private readonly waiters: Array<{ grant: () => void }> = [];

  acquire(waitMs: number, timers: Set<NodeJS.Timeout>): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          timers.delete(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        timers.delete(timer);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(
          new FakeRpcError(
            VirErrorCode.OPERATION_TIMEOUT,
            'Timed out during operation: cannot acquire state change lock (held by agent=remoteDispatchDomainQemuAgentCommand)',
          ),
        );
      }, waitMs);
      timers.add(timer);
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next.grant();
    else this.busy = false;
  }
}

const NO_ANSWER = Symbol('no answer');

function xmlEscape(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' })[c]!);
}

// ---------------------------------------------------------------------------------------------------------

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

  private readonly clientSet = new Set<ClientState>();
  /** Every socket of the listener, including TLS ones still in the handshake or refused: stop() closes them all. */
  private readonly rawSockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly holds: HoldGate[] = [];
  private readonly delays = new Map<string, number>();
  private readonly injectedErrors = new Map<string, Array<{ code: number; message: string }>>();
  private readonly jobLocks = new WeakMap<FakeDomain, JobLock>();
  private readonly agentInFlightBy = new Map<string, number>();
  private readonly agentPeakBy = new Map<string, number>();
  private nextClientId = 1;
  private nextCallbackId = 1;
  private nextDomainId = 1;
  private stopped = false;

  private constructor(
    private readonly server: net.Server,
    private readonly opts: FakeLibvirtdOptions,
    /** The unix socket path, or null when listening on TCP. */
    readonly socketPath: string | null,
    /** The TCP port, or null when listening on a unix socket. */
    readonly port: number | null,
    private readonly tempDir: string | null,
  ) {
    this.agentHandler = opts.agentHandler ?? defaultAgentHandler;
    this.maxClientRequests = opts.maxClientRequests ?? 5;
    this.serializeAgentCommands = opts.serializeAgentCommands ?? true;
    this.agentJobWaitMs = opts.agentJobWaitMs ?? 30_000;
    this.agentSecondMs = opts.agentSecondMs ?? 1000;
    this.agentDefaultTimeoutSeconds = opts.agentDefaultTimeoutSeconds ?? 5;
    for (const d of opts.domains ?? []) this.addDomain(d);
    server.on('connection', (raw: net.Socket) => {
      this.rawSockets.add(raw);
      raw.once('close', () => this.rawSockets.delete(raw));
    });
    // A TLS client becomes an RPC client only once the handshake is done and the confirmation byte sent.
    if (opts.tls) server.on('libvirtClient', (socket: net.Socket) => this.onConnection(socket));
    else server.on('connection', (socket) => this.onConnection(socket));
  }

  /** Starts listening: on a unix socket in a new temp dir (default), on opts.socketPath, or on 127.0.0.1:0 with tcp or tls. */
  static async start(opts: FakeLibvirtdOptions = {}): Promise<FakeLibvirtd> {
    if (opts.tls) {
      const server = tlsServer(opts.tls);
      await listen(server, { host: '127.0.0.1', port: 0 });
      const addr = server.address() as net.AddressInfo;
      return new FakeLibvirtd(server, opts, null, addr.port, null);
    }
    const server = net.createServer();
    if (opts.tcp) {
      await listen(server, { host: '127.0.0.1', port: 0 });
      const addr = server.address() as net.AddressInfo;
      return new FakeLibvirtd(server, opts, null, addr.port, null);
    }
    let tempDir: string | null = null;
    let socketPath = opts.socketPath;
    if (!socketPath) {
      tempDir = await mkdtemp(path.join(os.tmpdir(), 'fake-libvirtd-'));
      socketPath = path.join(tempDir, 'libvirt-sock');
    }
    await listen(server, { path: socketPath });
    return new FakeLibvirtd(server, opts, socketPath, null, tempDir);
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
    return { ...this.connectionOptions(overrides.transport ? { transport: overrides.transport } : {}), size: 2, maxCallsPerConnection: 4, backoffInitialMs: 10, backoffMaxMs: 50, ...overrides };
  }

  // ----- domains -----------------------------------------------------------------------------------------

  /** Adds a domain: defaults running, agent connected, random UUID, a fresh id when running. */
  addDomain(d: Partial<FakeDomain> & { name: string }): FakeDomain {
    const state = d.state ?? DomainState.RUNNING;
    const dom: FakeDomain = {
      name: d.name,
      uuid: d.uuid ?? randomUUID(),
      id: d.id ?? (isActive(state) ? this.nextDomainId++ : -1),
      state,
      reason: d.reason ?? 1,
      agent: d.agent ?? 'connected',
    };
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
    return this.agentInFlightBy.get(domain) ?? 0;
  }

  /** The most DOMAIN_AGENT_COMMAND calls for this domain that were ever in flight at once (what the client sent concurrently). */
  agentPeakInFlight(domain: string): number {
    return this.agentPeakBy.get(domain) ?? 0;
  }

  // ----- fault injection ---------------------------------------------------------------------------------

  /** Delays every reply of one procedure by ms (0 removes the delay). Combined with `replyDelay` (the larger wins). */
  setReplyDelay(procedure: number, ms: number, program: number = Program.REMOTE): void {
    if (ms > 0) this.delays.set(key(program, procedure), ms);
    else this.delays.delete(key(program, procedure));
  }

  /**
   * Holds back the replies of matching calls (the call is processed, its reply waits) until released.
   * match: a procedure number of the REMOTE program, { program, procedure }, or a predicate.
   */
  holdReplies(match: number | { program?: number; procedure: number } | ((call: FakeCall) => boolean)): ReplyHold {
    const pred =
      typeof match === 'function'
        ? match
        : typeof match === 'number'
          ? (c: FakeCall) => c.program === Program.REMOTE && c.procedure === match
          : (c: FakeCall) => c.program === (match.program ?? Program.REMOTE) && c.procedure === match.procedure;
    const gate: HoldGate = { match: pred, queue: [], active: true };
    this.holds.push(gate);
    return {
      get held() {
        return gate.queue.length;
      },
      waitUntilHeld: (n, timeoutMs = 5000) => waitFor(() => gate.queue.length >= n, timeoutMs, `${n} held replies`),
      releaseOne: () => {
        const next = gate.queue.shift();
        next?.();
        return next !== undefined;
      },
      release: () => {
        gate.active = false;
        const i = this.holds.indexOf(gate);
        if (i >= 0) this.holds.splice(i, 1);
        for (const next of gate.queue.splice(0)) next();
      },
    };
  }

  /** The next `times` calls of this procedure fail with this libvirt error instead of being processed. */
  injectError(procedure: number, error: { code: number; message: string }, opts: { program?: number; times?: number } = {}): void {
    const k = key(opts.program ?? Program.REMOTE, procedure);
    const list = this.injectedErrors.get(k) ?? [];
    for (let i = 0; i < (opts.times ?? 1); i++) list.push(error);
    this.injectedErrors.set(k, list);
  }

  /** Sends a keepalive PING to every client (each answers with a PONG, counted in pongsReceived). */
  sendKeepalivePing(): void {
    for (const c of this.clientSet) this.send(c, keepalivePacket(KeepaliveProc.PING));
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
    return this.emitEvent(DomainEventId.LIFECYCLE, dom, RemoteProc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, (callbackID) =>
      encode(codecs.lifecycleMsg, { callbackID, dom: toWire(dom), event, detail }),
    );
  }

  /** Sends an agent lifecycle event (state 1 connected / 2 disconnected, reason 0 unknown / 1 domain started / 2 channel); returns how many clients got it. */
  emitAgentLifecycle(domain: string | FakeDomain, state: number, reason = 2): number {
    const dom = typeof domain === 'string' ? this.domain(domain) : domain;
    return this.emitEvent(DomainEventId.AGENT_LIFECYCLE, dom, RemoteProc.DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE, (callbackID) =>
      encode(codecs.agentLifecycleMsg, { callbackID, dom: toWire(dom), state, reason }),
    );
  }

  private emitEvent(eventID: number, dom: FakeDomain, procedure: number, body: (callbackID: number) => Buffer): number {
    let sent = 0;
    for (const c of this.clientSet) {
      for (const [callbackID, cb] of c.callbacks) {
        if (cb.eventID !== eventID || (cb.domain !== null && cb.domain !== dom.uuid)) continue;
        const header: Header = { program: Program.REMOTE, version: PROTOCOL_VERSION, procedure, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK };
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
    for (const gate of [...this.holds]) {
      gate.active = false;
      for (const next of gate.queue.splice(0)) next();
    }
    this.holds.length = 0;
    this.delays.clear();
    this.injectedErrors.clear();
    this.replyDelay = null;
    this.ignoreKeepalive = false;
    this.splitWrites = false;
    this.coalesce = false;
    this.acceptConnections = true;
    this.agentHandler = this.opts.agentHandler ?? defaultAgentHandler;
    this.calls.length = 0;
    this.agentLog.length = 0;
    this.agentPeakBy.clear();
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
    for (const gate of this.holds) gate.queue.length = 0;
    this.holds.length = 0;
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
    const client: ClientState = {
      id: this.nextClientId++,
      socket,
      decoder: new PacketDecoder(),
      authenticated: false,
      opened: false,
      openedName: null,
      keepaliveRequested: false,
      callbacks: new Map(),
      running: 0,
      waiting: [],
      get inFlight() {
        return this.running + this.waiting.length;
      },
      outbox: [],
      pumping: false,
    };
    this.clientSet.add(client);
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = client.decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const p of packets) this.onPacket(client, p);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.clientSet.delete(client);
      client.waiting.length = 0;
      client.outbox.length = 0;
    });
  }

  private onPacket(client: ClientState, packet: Packet): void {
    const { header } = packet;
    if (header.program === Program.KEEPALIVE) {
      if (header.procedure === KeepaliveProc.PING) {
        this.pingsReceived++;
        if (!this.ignoreKeepalive) this.send(client, keepalivePacket(KeepaliveProc.PONG));
      } else if (header.procedure === KeepaliveProc.PONG) {
        this.pongsReceived++;
      }
      return;
    }
    if (header.type !== MessageType.CALL) return;
    this.calls.push({ program: header.program, procedure: header.procedure, serial: header.serial, clientId: client.id });
    if (client.running < this.maxClientRequests) void this.runCall(client, packet);
    else client.waiting.push(packet);
  }

  private async runCall(client: ClientState, packet: Packet): Promise<void> {
    client.running++;
    const { header } = packet;
    const call: FakeCall = { program: header.program, procedure: header.procedure, serial: header.serial, clientId: client.id };
    let status: number = MessageStatus.OK;
    let body: Buffer;
    try {
      body = await this.dispatch(client, call, packet.body);
    } catch (err) {
      status = MessageStatus.ERROR;
      const e = err instanceof FakeRpcError ? err : new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: ${(err as Error).message}`);
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
    const delay = Math.max(this.delays.get(key(call.program, call.procedure)) ?? 0, this.replyDelay?.(call) ?? 0);
    if (delay > 0) await trackedSleep(this.timers, delay);
    for (const gate of [...this.holds]) {
      if (gate.active && gate.match(call)) await new Promise<void>((resolve) => gate.queue.push(resolve));
    }
    if (this.stopped) return;
    const reply: Header = { ...header, type: MessageType.REPLY, status };
    this.send(client, encodePacket(reply, body));
    client.running--;
    const next = client.waiting.shift();
    if (next) void this.runCall(client, next);
  }

  /** Writes one packet to a client, honouring splitWrites and coalesce; packets to one client stay in order. */
  private send(client: ClientState, packet: Buffer): void {
    if (client.socket.destroyed || this.stopped) return;
    client.outbox.push(packet);
    if (!client.pumping) void this.pump(client);
  }

  private async pump(client: ClientState): Promise<void> {
    client.pumping = true;
    try {
      while (client.outbox.length > 0 && !client.socket.destroyed) {
        if (this.coalesce) await nextLoopTurn();
        const chunk = this.coalesce ? Buffer.concat(client.outbox.splice(0)) : client.outbox.shift()!;
        if (!this.splitWrites) {
          client.socket.write(chunk);
          continue;
        }
        for (let off = 0; off < chunk.length; ) {
          const n = this.splitWrites === 'bytes' ? 1 : 1 + Math.floor(Math.random() * 7);
          if (client.socket.destroyed) return;
          client.socket.write(chunk.subarray(off, off + n));
          off += n;
          await nextLoopTurn();
        }
      }
    } finally {
      client.pumping = false;
    }
  }

  // ----- procedures --------------------------------------------------------------------------------------

  private dispatch(client: ClientState, call: FakeCall, body: Buffer): Buffer | Promise<Buffer> {
    const injected = this.injectedErrors.get(key(call.program, call.procedure))?.shift();
    if (injected) throw new FakeRpcError(injected.code, injected.message);

    if (call.program === Program.REMOTE) {
      switch (call.procedure) {
        case RemoteProc.AUTH_LIST:
          return encode(codecs.authListRet, { types: this.opts.authTypes ?? [AuthType.NONE] });
        case RemoteProc.AUTH_POLKIT:
          if (!(this.opts.authTypes ?? []).includes(AuthType.POLKIT)) {
            throw new FakeRpcError(VIR_ERR_AUTH_FAILED, 'authentication failed: polkit authentication is not enabled', ErrFrom.RPC);
          }
          if (this.opts.polkitDenied) {
            throw new FakeRpcError(VIR_ERR_AUTH_FAILED, "authentication failed: access denied by policy 'org.libvirt.unix.manage'", ErrFrom.RPC);
          }
          client.authenticated = true;
          return encode(codecs.authPolkitRet, { complete: 1 });
      }
      this.requireAuth(client);
      switch (call.procedure) {
        case RemoteProc.CONNECT_OPEN: {
          const args = decode(codecs.connectOpenArgs, body);
          client.opened = true;
          client.openedName = args.name;
          return Buffer.alloc(0);
        }
        case RemoteProc.CONNECT_CLOSE:
          this.requireOpen(client);
          client.opened = false;
          client.callbacks.clear();
          return Buffer.alloc(0);
      }
      this.requireOpen(client);
      switch (call.procedure) {
        case RemoteProc.CONNECT_SUPPORTS_FEATURE: {
          const { feature } = decode(codecs.supportsFeatureArgs, body);
          if (feature === DriverFeature.PROGRAM_KEEPALIVE) client.keepaliveRequested = true;
          return encode(codecs.supportsFeatureRet, { supported: feature === DriverFeature.PROGRAM_KEEPALIVE ? 1 : 0 });
        }
        case RemoteProc.CONNECT_LIST_ALL_DOMAINS: {
          const { needResults, flags } = decode(codecs.listAllDomainsArgs, body);
          const wanted = this.domains.filter((d) => {
            const want = flags & (LIST_ACTIVE | LIST_INACTIVE);
            if (want === 0 || want === (LIST_ACTIVE | LIST_INACTIVE)) return true;
            return (want === LIST_ACTIVE) === isActive(d.state);
          });
          return encode(codecs.listAllDomainsRet, { domains: needResults ? wanted.map(toWire) : [], ret: wanted.length });
        }
        case RemoteProc.DOMAIN_LOOKUP_BY_NAME: {
          const { name } = decode(codecs.lookupByNameArgs, body);
          const d = this.domains.find((x) => x.name === name);
          if (!d) throw new FakeRpcError(VirErrorCode.NO_DOMAIN, `Domain not found: no domain with matching name '${name}'`);
          return encode(codecs.domainRet, { dom: toWire(d) });
        }
        case RemoteProc.DOMAIN_LOOKUP_BY_UUID: {
          const { uuid } = decode(codecs.lookupByUuidArgs, body);
          const s = uuidToString(uuid);
          const d = this.domains.find((x) => x.uuid.toLowerCase() === s);
          if (!d) throw new FakeRpcError(VirErrorCode.NO_DOMAIN, `Domain not found: no domain with matching uuid '${s}'`);
          return encode(codecs.domainRet, { dom: toWire(d) });
        }
        case RemoteProc.DOMAIN_GET_STATE: {
          const d = this.byWire(decode(codecs.domainFlagsArgs, body).dom);
          return encode(codecs.getStateRet, { state: d.state, reason: d.reason });
        }
        case RemoteProc.DOMAIN_GET_XML_DESC: {
          const d = this.byWire(decode(codecs.domainFlagsArgs, body).dom);
          return encode(codecs.getXmlDescRet, { xml: domainXml(d) });
        }
        case RemoteProc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: {
          const { eventID, dom } = decode(codecs.eventRegisterAnyArgs, body);
          const filter = dom ? this.byWire(dom).uuid : null;
          const callbackID = this.nextCallbackId++;
          client.callbacks.set(callbackID, { eventID, domain: filter });
          return encode(codecs.eventRegisterAnyRet, { callbackID });
        }
        case RemoteProc.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: {
          const { callbackID } = decode(codecs.eventDeregisterAnyArgs, body);
          if (!client.callbacks.delete(callbackID)) {
            throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: no domain event callback with ID ${callbackID}`, ErrFrom.REMOTE);
          }
          return Buffer.alloc(0);
        }
        // libvirt's agent-aware power APIs: they send a no-reply agent command under the agent job.
        case RemoteProc.DOMAIN_SHUTDOWN_FLAGS:
        case RemoteProc.DOMAIN_REBOOT: {
          const { dom, flags } = decode(codecs.domainFlagsArgs, body);
          const mode = call.procedure === RemoteProc.DOMAIN_REBOOT ? 'reboot' : 'powerdown';
          return this.agentPowerCall(client, this.byWire(dom), flags, { execute: 'guest-shutdown', arguments: { mode } });
        }
        case RemoteProc.DOMAIN_PM_SUSPEND_FOR_DURATION: {
          const { dom, target, duration, flags } = decode(codecs.pmSuspendForDurationArgs, body);
          const execute = ['guest-suspend-ram', 'guest-suspend-disk', 'guest-suspend-hybrid'][target];
          if (!execute || duration !== 0n || flags !== 0) throw new FakeRpcError(VIR_ERR_INVALID_ARG, `invalid argument: target ${target}, duration ${duration}, flags ${flags}`);
          return this.agentPowerCall(client, this.byWire(dom), 2, { execute });
        }
      }
      throw new FakeRpcError(VirErrorCode.NO_SUPPORT, `this function is not supported by the connection driver: unknown procedure: ${call.procedure}`, ErrFrom.RPC);
    }

    if (call.program === Program.QEMU) {
      this.requireAuth(client);
      this.requireOpen(client);
      if (call.procedure === QemuProc.DOMAIN_AGENT_COMMAND) return this.agentCommand(client, body);
      throw new FakeRpcError(VirErrorCode.NO_SUPPORT, `this function is not supported by the connection driver: unknown procedure: ${call.procedure}`, ErrFrom.RPC);
    }
    throw new FakeRpcError(VIR_ERR_RPC, `RPC error: cannot find program ${call.program} version ${PROTOCOL_VERSION}`, ErrFrom.RPC);
  }

  private requireAuth(client: ClientState): void {
    const types = this.opts.authTypes ?? [AuthType.NONE];
    if (!client.authenticated && types.length > 0 && !types.includes(AuthType.NONE)) {
      throw new FakeRpcError(VIR_ERR_RPC, 'RPC error: authentication required', ErrFrom.RPC);
    }
  }

  private requireOpen(client: ClientState): void {
    if (!client.opened) throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, 'internal error: connection not open', ErrFrom.RPC);
  }

  /** The domain a remote_nonnull_domain names, found by UUID as libvirt's drivers do. */
  private byWire(w: WireDomain): FakeDomain {
    const s = uuidToString(w.uuid);
    const d = this.domains.find((x) => x.uuid.toLowerCase() === s);
    if (!d) throw new FakeRpcError(VirErrorCode.NO_DOMAIN, `Domain not found: no domain with matching uuid '${s}' (${w.name})`);
    return d;
  }

  private async agentCommand(client: ClientState, body: Buffer): Promise<Buffer> {
    const args = decode(codecs.agentCommandArgs, body);
    const dom = this.byWire(args.dom);
    const name = dom.name;
    const inFlight = this.agentInFlight(name) + 1;
    this.agentInFlightBy.set(name, inFlight);
    this.agentPeakBy.set(name, Math.max(inFlight, this.agentPeakInFlight(name)));
    try {
      if (args.timeout < -2) {
        throw new FakeRpcError(VIR_ERR_INVALID_ARG, `invalid argument: guest agent timeout '${args.timeout}' is less than the minimum '-2'`);
      }
      let lock: JobLock | null = null;
      if (this.serializeAgentCommands) {
        lock = this.jobLocks.get(dom) ?? new JobLock();
        this.jobLocks.set(dom, lock);
        await lock.acquire(this.agentJobWaitMs, this.timers);
      }
      try {
        return encode(codecs.agentCommandRet, { result: await this.runAgent(client, dom, args.cmd, args.timeout) });
      } finally {
        lock?.release();
      }
    } finally {
      this.agentInFlightBy.set(name, this.agentInFlight(name) - 1);
    }
  }

  /**
   * virDomainShutdownFlags / virDomainReboot with the GUEST_AGENT flag (2), virDomainPMSuspendForDuration: the
   * agent handler gets the command (logged like any other); an { error } or { libvirtError } fails the call as
   * libvirt would, anything else ({ hang } included: these commands never reply) succeeds at once.
   */
  private async agentPowerCall(client: ClientState, dom: FakeDomain, flags: number, command: AgentCommand): Promise<Buffer> {
    if (flags !== 2) throw new FakeRpcError(VIR_ERR_INVALID_ARG, `invalid argument: the fake only implements the guest agent method (flags 2), got ${flags}`);
    let lock: JobLock | null = null;
    if (this.serializeAgentCommands) {
      lock = this.jobLocks.get(dom) ?? new JobLock();
      this.jobLocks.set(dom, lock);
      await lock.acquire(this.agentJobWaitMs, this.timers);
    }
    try {
      if (dom.state !== DomainState.RUNNING) throw new FakeRpcError(VirErrorCode.OPERATION_INVALID, 'Requested operation is not valid: domain is not running');
      if (dom.agent === 'none') throw new FakeRpcError(VirErrorCode.ARGUMENT_UNSUPPORTED, 'argument unsupported: QEMU guest agent is not configured');
      if (dom.agent === 'disconnected') throw new FakeRpcError(VirErrorCode.AGENT_UNRESPONSIVE, 'Guest agent is not responding: QEMU guest agent is not connected');
      this.agentLog.push({ domain: dom.name, execute: command.execute, arguments: command.arguments, timeoutSeconds: 60, clientId: client.id });
      const reply = await Promise.race([Promise.resolve(this.agentHandler(dom, command, 60)), Promise.resolve({ hang: true as const })]);
      if ('libvirtError' in reply) throw new FakeRpcError(reply.libvirtError.code, reply.libvirtError.message);
      if ('error' in reply) {
        throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: unable to execute QEMU agent command '${command.execute}': ${reply.error.desc ?? reply.error.class}`);
      }
      return Buffer.alloc(0);
    } finally {
      lock?.release();
    }
  }

  private async runAgent(client: ClientState, dom: FakeDomain, cmd: string, timeout: number): Promise<string> {
    if (dom.state !== DomainState.RUNNING) {
      throw new FakeRpcError(VirErrorCode.OPERATION_INVALID, 'Requested operation is not valid: domain is not running');
    }
    if (dom.agent === 'none') {
      throw new FakeRpcError(VirErrorCode.ARGUMENT_UNSUPPORTED, 'argument unsupported: QEMU guest agent is not configured');
    }
    if (dom.agent === 'disconnected') {
      throw new FakeRpcError(VirErrorCode.AGENT_UNRESPONSIVE, 'Guest agent is not responding: QEMU guest agent is not connected');
    }
    let parsed: unknown;
    try {
      // As libvirt's own parser: 64-bit integers exact (bigints past 2^53), so tests see what the agent would.
      parsed = parseAgentJson(cmd);
    } catch (err) {
      throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: cannot parse json ${cmd}: ${(err as Error).message}`);
    }
    const obj = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    const execute = typeof obj.execute === 'string' ? obj.execute : '<unknown>';
    let reply: AgentReply;
    if (typeof obj.execute !== 'string') {
      reply = { error: { class: 'GenericError', desc: "QMP input lacks member 'execute'" } };
    } else {
      const command = obj as AgentCommand;
      this.agentLog.push({ domain: dom.name, execute, arguments: command.arguments, timeoutSeconds: timeout, clientId: client.id });
      const seconds = timeout === -1 ? this.agentDefaultTimeoutSeconds : timeout;
      reply = await this.withAgentTimeout(() => this.agentHandler(dom, command, timeout), timeout === -2 ? null : seconds * this.agentSecondMs);
    }
    if ('raw' in reply) {
      // Only its shape is read here (an error carries no large integer): the text itself goes out untouched.
      const shape = JSON.parse(reply.raw) as { error?: { class: string; desc?: string } };
      if (!shape.error) return reply.raw.trim();
      reply = { error: shape.error };
    }
    if ('libvirtError' in reply) throw new FakeRpcError(reply.libvirtError.code, reply.libvirtError.message);
    if ('error' in reply) {
      const desc = reply.error.desc ?? reply.error.class;
      throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: unable to execute QEMU agent command '${execute}': ${desc}`);
    }
    if ('return' in reply) return JSON.stringify({ return: reply.return });
    throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: unable to execute QEMU agent command '${execute}'`);
  }

  /** Runs the handler; past timeoutMs (null = never) answers libvirt's agent timeout error. { hang } never answers. */
  private async withAgentTimeout(run: () => AgentReply | Promise<AgentReply>, timeoutMs: number | null): Promise<AgentReply> {
    let result: AgentReply | Promise<AgentReply>;
    try {
      result = run();
    } catch (err) {
      throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: agent handler failed: ${(err as Error).message}`);
    }
    const answer: Promise<AgentReply | typeof NO_ANSWER> = Promise.resolve(result).then<AgentReply | typeof NO_ANSWER>(
      (r) => ('hang' in r ? new Promise<typeof NO_ANSWER>(() => {}) : r),
      (err: unknown) => {
        throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: agent handler failed: ${(err as Error).message}`);
      },
    );
    if (timeoutMs === null) return (await answer) as AgentReply;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<typeof NO_ANSWER>((resolve) => {
      timer = setTimeout(() => {
        this.timers.delete(timer!);
        resolve(NO_ANSWER);
      }, timeoutMs);
      this.timers.add(timer);
    });
    try {
      const r = await Promise.race([answer, timedOut]);
      if (r === NO_ANSWER) {
        throw new FakeRpcError(VirErrorCode.AGENT_UNRESPONSIVE, 'Guest agent is not responding: Guest agent not available for now');
      }
      return r;
    } finally {
      clearTimeout(timer);
      this.timers.delete(timer!);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------

function isActive(state: number): boolean {
  return state !== DomainState.SHUTOFF && state !== DomainState.NOSTATE && state !== DomainState.CRASHED;
}

function key(program: number, procedure: number): string {
  return `${program}:${procedure}`;
}

function toWire(d: FakeDomain): WireDomain {
  return { name: d.name, uuid: uuidFromString(d.uuid), id: d.id };
}

function keepalivePacket(procedure: number): Buffer {
  return encodePacket({ program: Program.KEEPALIVE, version: PROTOCOL_VERSION, procedure, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK });
}

/** A minimal domain XML in the shape of libvirt's live XML (id and channel state only while running). */
export function domainXml(d: FakeDomain): string {
  const running = isActive(d.state);
  const lines = [
    running ? `<domain type='kvm' id='${d.id}'>` : `<domain type='kvm'>`,
    `  <name>${xmlEscape(d.name)}</name>`,
    `  <uuid>${d.uuid.toLowerCase()}</uuid>`,
    `  <memory unit='KiB'>262144</memory>`,
    `  <vcpu placement='static'>1</vcpu>`,
    `  <os>`,
    `    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>`,
    `  </os>`,
    `  <devices>`,
    `    <emulator>/usr/bin/qemu-system-x86_64</emulator>`,
  ];
  if (d.agent !== 'none') {
    const state = running ? ` state='${d.agent}'` : '';
    lines.push(
      `    <channel type='unix'>`,
      running
        ? `      <source mode='bind' path='/run/libvirt/qemu/channel/${d.id}-${xmlEscape(d.name)}/org.qemu.guest_agent.0'/>`
        : `      <source mode='bind'/>`,
      `      <target type='virtio' name='org.qemu.guest_agent.0'${state}/>`,
      `      <address type='virtio-serial' controller='0' bus='0' port='1'/>`,
      `    </channel>`,
    );
  }
  lines.push(`  </devices>`, `</domain>`, '');
  return lines.join('\n');
}

/**
 * A TLS server that behaves like libvirtd's TLS port: the client certificate is asked for but judged after the
 * handshake; accepted clients get the byte 1 and are handed on as 'libvirtClient', refused ones are closed.
 */
function tlsServer(o: FakeTlsOptions): tls.Server {
  const server = tls.createServer({ cert: o.cert, key: o.key, ca: o.ca, requestCert: o.requestCert, rejectUnauthorized: false });
  server.on('secureConnection', (socket) => {
    socket.on('error', () => {});
    if (o.requestCert && !socket.authorized) {
      socket.destroy();
      return;
    }
    socket.write(Buffer.from([o.rejectByte ?? 1]));
    if (o.rejectByte === undefined || o.rejectByte === 1) server.emit('libvirtClient', socket);
  });
  // Handshake failures (a client that refuses our certificate) are the client's business.
  server.on('tlsClientError', () => {});
  return server;
}

function listen(server: net.Server, where: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
