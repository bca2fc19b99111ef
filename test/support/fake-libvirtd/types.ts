// The fake libvirtd's public types: its domains, the agent handler's contract, what it records, its options; and
// the libvirt errors it answers (FakeRpcError with libvirt's virErrorNumber and virErrorDomain).
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
  /** What the domain XML holds inside <metadata>, as written (applications' own elements); absent: no <metadata>. */
  metadata?: string;
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
  /**
   * The domain event ids the daemon knows (virDomainEventID below its VIR_DOMAIN_EVENT_ID_LAST); registering another
   * fails as libvirtd fails it (1 "internal error: unsupported event ID N"). Default: every id.
   */
  eventIds?: number[];
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
export const ErrFrom = { RPC: 7, QEMU: 10, REMOTE: 13 } as const;
/** virErrorNumber values the fake answers beside protocol.ts's VirErrorCode. */
export const VIR_ERR_INVALID_ARG = 8;
export const VIR_ERR_RPC = 39;
export const VIR_ERR_AUTH_FAILED = 45;
/** virErrorLevel VIR_ERR_ERROR. */
export const VIR_ERR_LEVEL_ERROR = 2;

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
