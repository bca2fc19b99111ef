// An agent transport without any wire, as undici's MockAgent stands in for its dispatcher: the gateway's agent
// service hands it each command, and a scripted agent answers at once, in memory. The agents are the ones the fake
// libvirtd uses (an AgentHandler: defaultAgentHandler, GuestControlAgent, FakeGuestFiles, the recorded replies of
// test/fixtures/qga), so a route test can run against the same agent with libvirt or without it.
//
//   const agent = new MemoryAgentTransport(handler);            // or startMemoryGateway() in harness.ts
//   const gw = await startTestGateway(..., { agentTransport: agent });
//   agent.log                                                   // every command the agent got, as FakeLibvirtd.agentLog
//
// It answers like an agent reached over its own socket (backend 'agent-socket'): the reply text as the agent wrote it,
// {"error": ...} included (the agent service turns it into agent_error), no reply read for guest-shutdown and
// guest-suspend-*. An { hang } reply waits until the call's deadline; a { libvirtError } is thrown as libvirt's.
import { randomInt } from 'node:crypto';
import { parseAgentJson } from '../../src/agent/transports/agent-json.js';
import type { AgentBackend } from '../../src/domains/vocabulary.js';
import type { AgentTransport, SyncReport, TransportRun } from '../../src/agent/transports/transport.js';
import { LibvirtError } from '../../src/libvirt/errors.js';
import {
  DomainState,
  defaultAgentHandler,
  type AgentCommand,
  type AgentHandler,
  type AgentLogEntry,
  type AgentReply,
  type FakeDomain,
} from './fake-libvirtd.js';

/** The gateway's reference to a domain, as the transport interface takes it. */
type DomainRef = Parameters<AgentTransport['command']>[0];

/** libvirt's virErrorDomain VIR_FROM_QEMU, for a { libvirtError } reply. */
const FROM_QEMU = 10;

export class MemoryAgentTransport implements AgentTransport {
  readonly syncCommands = ['guest-sync-delimited', 'guest-sync'] as const;
  /** Every command the agent got, in order (clientId 0). */
  readonly log: AgentLogEntry[] = [];
  /** The domains the agent has seen, by UUID: the handler gets the same object every time, and a test may change it. */
  readonly domains = new Map<string, FakeDomain>();

  constructor(
    /** Answers commands; replace it per test, as FakeLibvirtd.agentHandler. */
    public handler: AgentHandler = defaultAgentHandler,
    readonly backend: AgentBackend = 'agent-socket',
  ) {}

  /** The FakeDomain the handler sees for this domain: running, agent connected, unless a test changed it. */
  domain(ref: DomainRef): FakeDomain {
    let d = this.domains.get(ref.uuid);
    if (!d) {
      d = { name: ref.name, uuid: ref.uuid, id: ref.id, state: DomainState.RUNNING, reason: 1, agent: 'connected' };
      this.domains.set(ref.uuid, d);
    }
    return d;
  }

  async command(dom: DomainRef, json: string, run: TransportRun & { expectReply: boolean }): Promise<string | null> {
    const command = parseAgentJson(json) as AgentCommand;
    // What libvirt would pass on as the agent timeout: a little more than what is left of the deadline.
    const timeoutSeconds = Math.max(1, Math.ceil((run.deadlineAt - Date.now()) / 1000) + 1);
    this.log.push({ domain: dom.name, execute: command.execute, arguments: command.arguments, timeoutSeconds, clientId: 0 });
    const pending = Promise.resolve(this.handler(this.domain(dom), command, timeoutSeconds));
    if (!run.expectReply) {
      // Nothing is read back (guest-shutdown, guest-suspend-*): an error the handler answers would never arrive either.
      pending.catch(() => {});
      return null;
    }
    return replyText(await untilAborted(pending, run.signal));
  }

  async sync(dom: DomainRef, command: SyncReport['command'], run: TransportRun): Promise<SyncReport> {
    const id = randomInt(0, 2 ** 31);
    const started = performance.now();
    const reply = await this.command(dom, JSON.stringify({ execute: command, arguments: { id } }), { ...run, expectReply: true });
    const returned = reply === null ? undefined : (parseAgentJson(reply) as { return?: unknown }).return;
    return {
      command,
      id,
      roundTripMs: Math.round((performance.now() - started) * 100) / 100,
      inStep: returned === id,
      discardedBytes: 0,
      staleReplies: 0,
    };
  }
}

/** The agent's reply as text; { hang } never settles (the caller's deadline ends the wait). */
function replyText(reply: AgentReply): string {
  if ('raw' in reply) return reply.raw.trim();
  if ('return' in reply) return JSON.stringify({ return: reply.return });
  if ('error' in reply) return JSON.stringify({ error: reply.error });
  if ('libvirtError' in reply)
    throw new LibvirtError({ code: reply.libvirtError.code, domain: FROM_QEMU, message: reply.libvirtError.message });
  throw new Error('unreachable: { hang } is handled by untilAborted');
}

/** The handler's reply, or the signal's reason once it aborts; a { hang } reply only ever ends that way. */
function untilAborted(pending: Promise<AgentReply>, signal: AbortSignal): Promise<AgentReply> {
  return new Promise<AgentReply>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (reply) => {
        if ('hang' in reply) return;
        signal.removeEventListener('abort', onAbort);
        resolve(reply);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
