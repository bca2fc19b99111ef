// libvirt's RPC protocol: constants, the packet header, the shared types (remote_nonnull_domain, remote_error) and
// the codec building blocks (virnetprotocol.x, remote_protocol.x). Each codec encodes and decodes, so the client and
// the fake libvirtd used in tests share one definition. The procedures themselves, each with its number and the
// codecs of its arguments and reply, are one table in procedures.ts.
import { XdrReader, XdrWriter } from './xdr.js';

export const Program = {
  REMOTE: 0x20008086,
  QEMU: 0x20008087,
  KEEPALIVE: 0x6b656570,
} as const;

export const PROTOCOL_VERSION = 1;

export const MessageType = { CALL: 0, REPLY: 1, MESSAGE: 2, STREAM: 3 } as const;
export const MessageStatus = { OK: 0, ERROR: 1, CONTINUE: 2 } as const;

export const AuthType = { NONE: 0, SASL: 1, POLKIT: 2 } as const;
export const DriverFeature = { PROGRAM_KEEPALIVE: 10 } as const;
/**
 * virDomainEventID: the events the gateway subscribes to. REBOOT is the guest's own reset (a reboot), which no lifecycle
 * event reports; METADATA_CHANGE is virDomainSetMetadata's (Nova rewrites its metadata that way when an interface is
 * attached or detached, with no lifecycle event).
 */
export const DomainEventId = { LIFECYCLE: 0, REBOOT: 1, AGENT_LIFECYCLE: 18, METADATA_CHANGE: 23 } as const;

/** virDomainMetadataType: what a METADATA_CHANGE event is about. ELEMENT: an application's own element, named by its namespace URI. */
export const DomainMetadataType = { DESCRIPTION: 0, TITLE: 1, ELEMENT: 2 } as const;

/** virDomainState */
export const DOMAIN_STATES = ['nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended'] as const;
export type DomainStateName = (typeof DOMAIN_STATES)[number];
export function domainStateName(state: number): DomainStateName {
  return DOMAIN_STATES[state] ?? 'nostate';
}

/** virDomainEventType */
export const LifecycleEvent = {
  DEFINED: 0,
  UNDEFINED: 1,
  STARTED: 2,
  SUSPENDED: 3,
  RESUMED: 4,
  STOPPED: 5,
  SHUTDOWN: 6,
  PMSUSPENDED: 7,
  CRASHED: 8,
} as const;

/** virConnectDomainEventAgentLifecycleState */
export const AgentLifecycleState = { CONNECTED: 1, DISCONNECTED: 2 } as const;

/** virErrorNumber values the gateway reacts to. */
export const VirErrorCode = {
  INTERNAL_ERROR: 1,
  NO_SUPPORT: 3,
  NO_DOMAIN: 42,
  OPERATION_INVALID: 55,
  OPERATION_TIMEOUT: 68,
  ARGUMENT_UNSUPPORTED: 74,
  AGENT_UNRESPONSIVE: 86,
  AGENT_COMMAND_TIMEOUT: 112,
  AGENT_COMMAND_FAILED: 113,
} as const;

/** virDomainShutdownFlagValues / virDomainRebootFlagValues: use the guest agent (both 1 << 1). */
export const ShutdownFlag = { GUEST_AGENT: 2 } as const;
export const RebootFlag = { GUEST_AGENT: 2 } as const;
/** virNodeSuspendTarget, as virDomainPMSuspendForDuration takes it. */
export const SuspendTarget = { MEM: 0, DISK: 1, HYBRID: 2 } as const;

export const REMOTE_STRING_MAX = 4_194_304;
export const REMOTE_DOMAIN_LIST_MAX = 16_384;
export const REMOTE_AUTH_TYPE_LIST_MAX = 20;
/** virnetprotocol.x: VIR_NET_MESSAGE_MAX, the largest packet either side accepts. */
export const MESSAGE_MAX = 33_554_432;
export const HEADER_SIZE = 24;
export const UUID_BYTES = 16;

export interface Codec<T> {
  encode(w: XdrWriter, v: T): void;
  decode(r: XdrReader): T;
}

export interface Header {
  program: number;
  version: number;
  procedure: number;
  type: number;
  serial: number;
  status: number;
}

export const headerCodec: Codec<Header> = {
  encode(w, h) {
    w.uint(h.program).uint(h.version).int(h.procedure).int(h.type).uint(h.serial).int(h.status);
  },
  decode(r) {
    return { program: r.uint(), version: r.uint(), procedure: r.int(), type: r.int(), serial: r.uint(), status: r.int() };
  },
};

export interface WireDomain {
  name: string;
  uuid: Buffer;
  id: number;
}

export const domainCodec: Codec<WireDomain> = {
  encode(w, d) {
    w.string(d.name).fixedOpaque(d.uuid, UUID_BYTES).int(d.id);
  },
  decode(r) {
    return { name: r.string(REMOTE_STRING_MAX), uuid: r.fixedOpaque(UUID_BYTES), id: r.int() };
  },
};

export interface RemoteError {
  code: number;
  domain: number;
  message: string | null;
  level: number;
  dom: WireDomain | null;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
  net: { name: string; uuid: Buffer } | null;
}

const optString = (r: XdrReader) => r.optional((x) => x.string(REMOTE_STRING_MAX));
const writeString = (w: XdrWriter, s: string) => void w.string(s);

export const remoteErrorCodec: Codec<RemoteError> = {
  encode(w, e) {
    w.int(e.code).int(e.domain).optional(e.message, writeString).int(e.level);
    w.optional(e.dom, (x, d) => domainCodec.encode(x, d));
    w.optional(e.str1, writeString).optional(e.str2, writeString).optional(e.str3, writeString);
    w.int(e.int1).int(e.int2);
    w.optional(e.net, (x, n) => void x.string(n.name).fixedOpaque(n.uuid, UUID_BYTES));
  },
  decode(r) {
    return {
      code: r.int(),
      domain: r.int(),
      message: optString(r),
      level: r.int(),
      dom: r.optional((x) => domainCodec.decode(x)),
      str1: optString(r),
      str2: optString(r),
      str3: optString(r),
      int1: r.int(),
      int2: r.int(),
      net: r.optional((x) => ({ name: x.string(REMOTE_STRING_MAX), uuid: x.fixedOpaque(UUID_BYTES) })),
    };
  },
};

/** Builds a codec for a struct from its fields, in wire order (the order of the .x file). */
type FieldCodecs<T> = { [K in keyof T]: Codec<T[K]> };
export function struct<T extends object>(fields: FieldCodecs<T>): Codec<T> {
  const entries = Object.entries(fields) as [keyof T, Codec<unknown>][];
  return {
    encode(w, v) {
      for (const [k, c] of entries) c.encode(w, v[k]);
    },
    decode(r) {
      const out = {} as T;
      for (const [k, c] of entries) out[k] = c.decode(r) as T[keyof T];
      return out;
    },
  };
}

export const int: Codec<number> = { encode: (w, v) => void w.int(v), decode: (r) => r.int() };
export const uint: Codec<number> = { encode: (w, v) => void w.uint(v), decode: (r) => r.uint() };
export const str: Codec<string> = { encode: writeString, decode: (r) => r.string(REMOTE_STRING_MAX) };
export const optStr: Codec<string | null> = { encode: (w, v) => void w.optional(v, writeString), decode: optString };
export const uuid: Codec<Buffer> = { encode: (w, v) => void w.fixedOpaque(v, UUID_BYTES), decode: (r) => r.fixedOpaque(UUID_BYTES) };
export const optDomain: Codec<WireDomain | null> = {
  encode: (w, v) => void w.optional(v, (x, d) => domainCodec.encode(x, d)),
  decode: (r) => r.optional((x) => domainCodec.decode(x)),
};
export function arrayOf<T>(c: Codec<T>, max: number): Codec<T[]> {
  return { encode: (w, v) => void w.array(v, (x, i) => c.encode(x, i)), decode: (r) => r.array((x) => c.decode(x), max) };
}
/** XDR unsigned hyper: two big-endian words. */
export const uhyper: Codec<bigint> = {
  encode: (w, v) => void w.uint(Number(v >> 32n)).uint(Number(v & 0xffffffffn)),
  decode: (r) => (BigInt(r.uint()) << 32n) | BigInt(r.uint()),
};
export const voidCodec: Codec<void> = { encode: () => {}, decode: () => undefined };

export function encode<T>(codec: Codec<T>, value: T): Buffer {
  const w = new XdrWriter();
  codec.encode(w, value);
  return w.toBuffer();
}

export function decode<T>(codec: Codec<T>, body: Buffer): T {
  return codec.decode(new XdrReader(body));
}

/** Frames one packet: the length word counts itself and the header. */
export function encodePacket(header: Header, body: Buffer = Buffer.alloc(0)): Buffer {
  const w = new XdrWriter(4 + HEADER_SIZE + body.length);
  w.uint(4 + HEADER_SIZE + body.length);
  headerCodec.encode(w, header);
  const head = w.toBuffer();
  return body.length ? Buffer.concat([head, body]) : Buffer.from(head);
}

export function uuidToString(uuid: Uint8Array): string {
  const h = Buffer.from(uuid).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}
export function uuidFromString(s: string): Buffer {
  if (!isUuid(s)) throw new RangeError(`not a UUID: ${s}`);
  return Buffer.from(s.replace(/-/g, ''), 'hex');
}
