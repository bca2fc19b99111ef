// The procedures the fake libvirtd answers, each keyed by its entry in the gateway's own procedure table
// (src/libvirt/procedures.ts): the entry's codecs decode the arguments and encode the reply, so the fake cannot
// number or encode a procedure differently from the client. What each answers, with libvirt's error codes and
// wording, is in the handlers below; test/unit/libvirt-wire.test.ts checks the table itself against bytes a real
// libvirtd sent.
import type { CallProcedure } from '../../../src/libvirt/procedures.js';
import { Qemu, Remote } from '../../../src/libvirt/procedures.js';
import {
  AuthType,
  DriverFeature,
  PROTOCOL_VERSION,
  Program,
  SuspendTarget,
  VirErrorCode,
  decode,
  encode,
} from '../../../src/libvirt/protocol.js';
import type { FakeAgents } from './agent.js';
import { byName, byUuid, byWire, domainXml, listed, toWire } from './domains.js';
import type { ClientState } from './server.js';
import {
  ErrFrom,
  FakeRpcError,
  VIR_ERR_AUTH_FAILED,
  VIR_ERR_INVALID_ARG,
  VIR_ERR_RPC,
  type FakeCall,
  type FakeDomain,
  type FakeLibvirtdOptions,
} from './types.js';

/** What the handlers see of the fake. */
export interface ProcedureHost {
  readonly domains: FakeDomain[];
  readonly options: FakeLibvirtdOptions;
  readonly agents: FakeAgents;
  nextCallbackId(): number;
}

interface Context {
  host: ProcedureHost;
  client: ClientState;
  call: FakeCall;
}

/** Before which step of a connection's life a procedure is refused, as libvirtd refuses it. */
type Needs = 'nothing' | 'auth' | 'open';

interface Handler<A, R> {
  proc: CallProcedure<A, R>;
  needs: Needs;
  run(ctx: Context, args: A): R | Promise<R>;
}

function handle<A, R>(proc: CallProcedure<A, R>, needs: Needs, run: (ctx: Context, args: A) => R | Promise<R>): Handler<A, R> {
  return { proc, needs, run };
}

/** libvirt 9.0.0, as the real daemon of test/unit/libvirt-wire.test.ts answers. */
const LIB_VERSION = 9_000_000n;

const authTypes = (o: FakeLibvirtdOptions) => o.authTypes ?? [AuthType.NONE];

const HANDLERS = [
  handle(Remote.AUTH_LIST, 'nothing', ({ host }) => ({ types: authTypes(host.options) })),
  handle(Remote.AUTH_POLKIT, 'nothing', ({ host, client }) => {
    if (!(host.options.authTypes ?? []).includes(AuthType.POLKIT)) {
      throw new FakeRpcError(VIR_ERR_AUTH_FAILED, 'authentication failed: polkit authentication is not enabled', ErrFrom.RPC);
    }
    if (host.options.polkitDenied)
      throw new FakeRpcError(VIR_ERR_AUTH_FAILED, "authentication failed: access denied by policy 'org.libvirt.unix.manage'", ErrFrom.RPC);
    client.authenticated = true;
    return { complete: 1 };
  }),
  handle(Remote.CONNECT_OPEN, 'auth', ({ client }, { name }) => {
    client.opened = true;
    client.openedName = name;
  }),
  handle(Remote.CONNECT_CLOSE, 'open', ({ client }) => {
    client.opened = false;
    client.callbacks.clear();
  }),
  handle(Remote.CONNECT_SUPPORTS_FEATURE, 'open', ({ client }, { feature }) => {
    if (feature === DriverFeature.PROGRAM_KEEPALIVE) client.keepaliveRequested = true;
    return { supported: feature === DriverFeature.PROGRAM_KEEPALIVE ? 1 : 0 };
  }),
  handle(Remote.CONNECT_GET_LIB_VERSION, 'open', () => ({ libVer: LIB_VERSION })),
  handle(Remote.CONNECT_LIST_ALL_DOMAINS, 'open', ({ host }, { needResults, flags }) => {
    const wanted = listed(host.domains, flags);
    return { domains: needResults ? wanted.map(toWire) : [], ret: wanted.length };
  }),
  handle(Remote.DOMAIN_LOOKUP_BY_NAME, 'open', ({ host }, { name }) => ({ dom: toWire(byName(host.domains, name)) })),
  handle(Remote.DOMAIN_LOOKUP_BY_UUID, 'open', ({ host }, { uuid }) => ({ dom: toWire(byUuid(host.domains, uuid)) })),
  handle(Remote.DOMAIN_GET_STATE, 'open', ({ host }, { dom }) => {
    const d = byWire(host.domains, dom);
    return { state: d.state, reason: d.reason };
  }),
  handle(Remote.DOMAIN_GET_XML_DESC, 'open', ({ host }, { dom }) => ({ xml: domainXml(byWire(host.domains, dom)) })),
  handle(Remote.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, 'open', ({ host, client }, { eventID, dom }) => {
    const known = host.options.eventIds;
    if (known && !known.includes(eventID))
      throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: unsupported event ID ${eventID}`, ErrFrom.REMOTE);
    const filter = dom ? byWire(host.domains, dom).uuid : null;
    const callbackID = host.nextCallbackId();
    client.callbacks.set(callbackID, { eventID, domain: filter });
    return { callbackID };
  }),
  handle(Remote.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, 'open', ({ client }, { callbackID }) => {
    if (!client.callbacks.delete(callbackID)) {
      throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: no domain event callback with ID ${callbackID}`, ErrFrom.REMOTE);
    }
  }),
  // libvirt's agent-aware power APIs: they send a no-reply agent command under the agent job.
  handle(Remote.DOMAIN_SHUTDOWN_FLAGS, 'open', ({ host, client }, { dom, flags }) =>
    host.agents.power(client.id, byWire(host.domains, dom), flags, { execute: 'guest-shutdown', arguments: { mode: 'powerdown' } }),
  ),
  handle(Remote.DOMAIN_REBOOT, 'open', ({ host, client }, { dom, flags }) =>
    host.agents.power(client.id, byWire(host.domains, dom), flags, { execute: 'guest-shutdown', arguments: { mode: 'reboot' } }),
  ),
  handle(Remote.DOMAIN_PM_SUSPEND_FOR_DURATION, 'open', ({ host, client }, { dom, target, duration, flags }) => {
    const execute = {
      [SuspendTarget.MEM]: 'guest-suspend-ram',
      [SuspendTarget.DISK]: 'guest-suspend-disk',
      [SuspendTarget.HYBRID]: 'guest-suspend-hybrid',
    }[target];
    if (!execute || duration !== 0n || flags !== 0)
      throw new FakeRpcError(VIR_ERR_INVALID_ARG, `invalid argument: target ${target}, duration ${duration}, flags ${flags}`);
    return host.agents.power(client.id, byWire(host.domains, dom), 2, { execute });
  }),
  handle(Qemu.DOMAIN_AGENT_COMMAND, 'open', async ({ host, client }, { dom, cmd, timeout }) => ({
    result: await host.agents.command(client.id, byWire(host.domains, dom), cmd, timeout),
  })),
];

const byNumber = new Map<string, Handler<unknown, unknown>>(
  HANDLERS.map((h) => [`${h.proc.program}:${h.proc.procedure}`, h as Handler<unknown, unknown>]),
);

function requireAuth({ host, client }: Context): void {
  const types = authTypes(host.options);
  if (!client.authenticated && types.length > 0 && !types.includes(AuthType.NONE)) {
    throw new FakeRpcError(VIR_ERR_RPC, 'RPC error: authentication required', ErrFrom.RPC);
  }
}

function requireOpen({ client }: Context): void {
  if (!client.opened) throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, 'internal error: connection not open', ErrFrom.RPC);
}

/**
 * Runs one call: its reply body, or a FakeRpcError. Calls before authentication (39) or before CONNECT_OPEN
 * (1 "connection not open") are refused; a procedure the fake lacks gets 3 (no support), an unknown program 39.
 */
export async function dispatch(host: ProcedureHost, client: ClientState, call: FakeCall, body: Buffer): Promise<Buffer> {
  const ctx: Context = { host, client, call };
  if (call.program !== Program.REMOTE && call.program !== Program.QEMU) {
    throw new FakeRpcError(VIR_ERR_RPC, `RPC error: cannot find program ${call.program} version ${PROTOCOL_VERSION}`, ErrFrom.RPC);
  }
  const handler = byNumber.get(`${call.program}:${call.procedure}`);
  const needs: Needs = handler?.needs ?? 'open';
  if (needs !== 'nothing') requireAuth(ctx);
  if (needs === 'open') requireOpen(ctx);
  if (!handler) {
    throw new FakeRpcError(
      VirErrorCode.NO_SUPPORT,
      `this function is not supported by the connection driver: unknown procedure: ${call.procedure}`,
      ErrFrom.RPC,
    );
  }
  return encode(handler.proc.ret, await handler.run(ctx, decode(handler.proc.args, body)));
}
