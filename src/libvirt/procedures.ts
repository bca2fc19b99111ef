// Every libvirt procedure the gateway calls, and every message it reads, in one table: program, number, and the
// codecs of the arguments and of the reply (or of the message body), as go-libvirt's generated procedure code
// pairs them. The client (connection.ts, pool.ts, client.ts) and the fake libvirtd of the tests
// (test/support/fake-libvirtd/) both take numbers and codecs from here, never from anywhere else.
//
// Numbers and field orders as libvirt defines them: src/remote/remote_protocol.x (REMOTE_PROC_*),
// src/remote/qemu_protocol.x (QEMU_PROC_*), src/rpc/virkeepaliveprotocol.x (KEEPALIVE_PROC_*). Struct names in
// the comments are the .x file's, so each entry can be checked against it. test/unit/libvirt-wire.test.ts holds
// the bytes of several of them, as a real libvirtd sent and accepted them.
import {
  Program,
  REMOTE_AUTH_TYPE_LIST_MAX,
  REMOTE_DOMAIN_LIST_MAX,
  arrayOf,
  domainCodec,
  int,
  optDomain,
  optStr,
  str,
  struct,
  uhyper,
  uint,
  uuid,
  voidCodec,
  type Codec,
  type WireDomain,
} from './protocol.js';

/** A procedure the client calls: it sends `args`, the daemon answers `ret` (or a remote_error). */
export interface CallProcedure<A, R> {
  readonly kind: 'call';
  /** libvirt's name for it, e.g. REMOTE_PROC_CONNECT_OPEN. */
  readonly name: string;
  readonly program: number;
  readonly procedure: number;
  readonly args: Codec<A>;
  readonly ret: Codec<R>;
}

/** A message the daemon sends unasked (MessageType.MESSAGE): a domain event, a keepalive. */
export interface MessageProcedure<B> {
  readonly kind: 'message';
  readonly name: string;
  readonly program: number;
  readonly procedure: number;
  readonly body: Codec<B>;
}

// Any entry of the table, its value types erased: a caller that takes one from the list must know (or check) what
// its codecs carry. Codec's methods are checked bivariantly in their parameter, so every CallProcedure<A, R> is a
// CallProcedure<unknown, unknown>.
export type AnyProcedure = CallProcedure<unknown, unknown> | MessageProcedure<unknown>;

function call<A, R>(program: number, procedure: number, name: string, args: Codec<A>, ret: Codec<R>): CallProcedure<A, R> {
  return { kind: 'call', name, program, procedure, args, ret };
}
function message<B>(program: number, procedure: number, name: string, body: Codec<B>): MessageProcedure<B> {
  return { kind: 'message', name, program, procedure, body };
}
const remote = <A, R>(n: number, name: string, args: Codec<A>, ret: Codec<R>) => call(Program.REMOTE, n, `REMOTE_PROC_${name}`, args, ret);

// Structs several procedures share.
/** remote_domain_*_args { remote_nonnull_domain dom; unsigned int flags; } (get_state, get_xml_desc, reboot, shutdown_flags) */
const domainFlags = struct<{ dom: WireDomain; flags: number }>({ dom: domainCodec, flags: uint });
/** remote_domain_lookup_by_*_ret { remote_nonnull_domain dom; } */
const domainRet = struct<{ dom: WireDomain }>({ dom: domainCodec });

/** The REMOTE program (0x20008086). */
export const Remote = {
  /** remote_connect_open_args { remote_string name; unsigned int flags; } -> void */
  CONNECT_OPEN: remote(1, 'CONNECT_OPEN', struct<{ name: string | null; flags: number }>({ name: optStr, flags: uint }), voidCodec),
  CONNECT_CLOSE: remote(2, 'CONNECT_CLOSE', voidCodec, voidCodec),
  /** void -> remote_connect_get_lib_version_ret { unsigned hyper lib_ver; } (major * 1,000,000 + minor * 1,000 + release) */
  CONNECT_GET_LIB_VERSION: remote(157, 'CONNECT_GET_LIB_VERSION', voidCodec, struct<{ libVer: bigint }>({ libVer: uhyper })),
  /** remote_domain_get_xml_desc_args -> remote_domain_get_xml_desc_ret { remote_nonnull_string xml; } */
  DOMAIN_GET_XML_DESC: remote(14, 'DOMAIN_GET_XML_DESC', domainFlags, struct<{ xml: string }>({ xml: str })),
  /** remote_domain_lookup_by_name_args { remote_nonnull_string name; } -> { dom } */
  DOMAIN_LOOKUP_BY_NAME: remote(23, 'DOMAIN_LOOKUP_BY_NAME', struct<{ name: string }>({ name: str }), domainRet),
  /** remote_domain_lookup_by_uuid_args { remote_uuid uuid; } -> { dom } */
  DOMAIN_LOOKUP_BY_UUID: remote(24, 'DOMAIN_LOOKUP_BY_UUID', struct<{ uuid: Buffer }>({ uuid }), domainRet),
  /** remote_domain_reboot_args { dom; unsigned int flags; } -> void: flags GUEST_AGENT goes through the agent */
  DOMAIN_REBOOT: remote(27, 'DOMAIN_REBOOT', domainFlags, voidCodec),
  /** remote_connect_supports_feature_args { int feature; } -> { int supported; } */
  CONNECT_SUPPORTS_FEATURE: remote(
    60,
    'CONNECT_SUPPORTS_FEATURE',
    struct<{ feature: number }>({ feature: int }),
    struct<{ supported: number }>({ supported: int }),
  ),
  /** void -> remote_auth_list_ret { remote_auth_type types<REMOTE_AUTH_TYPE_LIST_MAX>; } */
  AUTH_LIST: remote(66, 'AUTH_LIST', voidCodec, struct<{ types: number[] }>({ types: arrayOf(int, REMOTE_AUTH_TYPE_LIST_MAX) })),
  /** void -> remote_auth_polkit_ret { int complete; } */
  AUTH_POLKIT: remote(70, 'AUTH_POLKIT', voidCodec, struct<{ complete: number }>({ complete: int })),
  /** remote_domain_get_state_args -> remote_domain_get_state_ret { int state; int reason; } */
  DOMAIN_GET_STATE: remote(212, 'DOMAIN_GET_STATE', domainFlags, struct<{ state: number; reason: number }>({ state: int, reason: int })),
  /** remote_domain_shutdown_flags_args -> void */
  DOMAIN_SHUTDOWN_FLAGS: remote(258, 'DOMAIN_SHUTDOWN_FLAGS', domainFlags, voidCodec),
  /** remote_domain_pm_suspend_for_duration_args { dom; unsigned int target; unsigned hyper duration; unsigned int flags; } -> void */
  DOMAIN_PM_SUSPEND_FOR_DURATION: remote(
    261,
    'DOMAIN_PM_SUSPEND_FOR_DURATION',
    struct<{ dom: WireDomain; target: number; duration: bigint; flags: number }>({
      dom: domainCodec,
      target: uint,
      duration: uhyper,
      flags: uint,
    }),
    voidCodec,
  ),
  /** remote_connect_list_all_domains_args { int need_results; unsigned int flags; } -> { remote_nonnull_domain domains<>; unsigned int ret; } */
  CONNECT_LIST_ALL_DOMAINS: remote(
    273,
    'CONNECT_LIST_ALL_DOMAINS',
    struct<{ needResults: number; flags: number }>({ needResults: int, flags: uint }),
    struct<{ domains: WireDomain[]; ret: number }>({ domains: arrayOf(domainCodec, REMOTE_DOMAIN_LIST_MAX), ret: uint }),
  ),
  /** remote_connect_domain_event_callback_register_any_args { int eventID; remote_domain dom; } -> { int callbackID; } */
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: remote(
    316,
    'CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY',
    struct<{ eventID: number; dom: WireDomain | null }>({ eventID: int, dom: optDomain }),
    struct<{ callbackID: number }>({ callbackID: int }),
  ),
  /** remote_connect_domain_event_callback_deregister_any_args { int callbackID; } -> void */
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: remote(
    317,
    'CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY',
    struct<{ callbackID: number }>({ callbackID: int }),
    voidCodec,
  ),
  /** remote_domain_event_callback_lifecycle_msg { int callbackID; remote_domain_event_lifecycle_msg { dom; int event; int detail; } } */
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: message(
    Program.REMOTE,
    318,
    'REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE',
    struct<{ callbackID: number; dom: WireDomain; event: number; detail: number }>({
      callbackID: int,
      dom: domainCodec,
      event: int,
      detail: int,
    }),
  ),
  /** remote_domain_event_callback_reboot_msg { int callbackID; remote_domain_event_reboot_msg { remote_nonnull_domain dom; } } */
  DOMAIN_EVENT_CALLBACK_REBOOT: message(
    Program.REMOTE,
    319,
    'REMOTE_PROC_DOMAIN_EVENT_CALLBACK_REBOOT',
    struct<{ callbackID: number; dom: WireDomain }>({ callbackID: int, dom: domainCodec }),
  ),
  /** remote_domain_event_callback_agent_lifecycle_msg { int callbackID; dom; int state; int reason; } */
  DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE: message(
    Program.REMOTE,
    348,
    'REMOTE_PROC_DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE',
    struct<{ callbackID: number; dom: WireDomain; state: number; reason: number }>({
      callbackID: int,
      dom: domainCodec,
      state: int,
      reason: int,
    }),
  ),
  /**
   * remote_domain_event_callback_metadata_change_msg { int callbackID; remote_nonnull_domain dom; int type; remote_string nsuri; }
   * (libvirt 3.0 and later; nsuri is the namespace of a changed ELEMENT, null for the description and the title)
   */
  DOMAIN_EVENT_CALLBACK_METADATA_CHANGE: message(
    Program.REMOTE,
    379,
    'REMOTE_PROC_DOMAIN_EVENT_CALLBACK_METADATA_CHANGE',
    struct<{ callbackID: number; dom: WireDomain; type: number; nsuri: string | null }>({
      callbackID: int,
      dom: domainCodec,
      type: int,
      nsuri: optStr,
    }),
  ),
} as const;

/** The QEMU program (0x20008087). */
export const Qemu = {
  /** qemu_domain_agent_command_args { dom; remote_nonnull_string cmd; int timeout; unsigned int flags; } -> { remote_string result; } */
  DOMAIN_AGENT_COMMAND: call(
    Program.QEMU,
    3,
    'QEMU_PROC_DOMAIN_AGENT_COMMAND',
    struct<{ dom: WireDomain; cmd: string; timeout: number; flags: number }>({ dom: domainCodec, cmd: str, timeout: int, flags: uint }),
    struct<{ result: string | null }>({ result: optStr }),
  ),
} as const;

/** The KEEPALIVE program (0x6b656570, "keep"): both sides send these as messages with serial 0 and no body. */
export const Keepalive = {
  PING: message(Program.KEEPALIVE, 1, 'KEEPALIVE_PROC_PING', voidCodec),
  PONG: message(Program.KEEPALIVE, 2, 'KEEPALIVE_PROC_PONG', voidCodec),
} as const;

type Numbers<T> = { readonly [K in keyof T]: number };
function numbers<T extends Record<string, { procedure: number }>>(table: T): Numbers<T> {
  return Object.fromEntries(Object.entries(table).map(([k, p]) => [k, p.procedure])) as Numbers<T>;
}

/** The procedure numbers alone, by name: for tests and logs that only count or match calls. */
export const RemoteProc = numbers(Remote);
export const QemuProc = numbers(Qemu);
export const KeepaliveProc = numbers(Keepalive);

/** Every entry of the table. */
export const PROCEDURES: readonly AnyProcedure[] = [...Object.values(Remote), ...Object.values(Qemu), ...Object.values(Keepalive)];

const byNumber = new Map(PROCEDURES.map((p) => [`${p.program}:${p.procedure}`, p]));

/** The table's entry for a program and procedure number, if the table has it. */
export function procedureFor(program: number, procedure: number): AnyProcedure | undefined {
  return byNumber.get(`${program}:${procedure}`);
}
