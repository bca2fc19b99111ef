// How a command reaches a domain's guest agent: through libvirt (virDomainQemuAgentCommand), or straight
// over the agent's own socket (src/agent-socket). The agent service queues, gates and times calls the same
// way for both; only the last step differs.
import { randomInt } from 'node:crypto';
import type { DomainRef } from '../../libvirt/client.js';
import type { LibvirtHosts } from '../../libvirt/hosts.js';
import { parseAgentJson } from '../core/agent-json.js';

export type AgentBackend = 'libvirt' | 'agent-socket';

/** One call's run: its deadline, and a signal that aborts at the deadline or when the caller goes away. */
export interface TransportRun {
  deadlineAt: number;
  signal: AbortSignal;
}

/** What a guest-sync / guest-sync-delimited round trip found: for diagnosing a channel. */
export interface SyncReport {
  command: 'guest-sync' | 'guest-sync-delimited';
  id: number;
  /** From the first byte written to the answer (over a socket, a fallback resynchronisation of the sync included). */
  roundTripMs: number;
  /** The first reply read answered this id: nothing stale or garbled was waiting on the channel. */
  inStep: boolean;
  discardedBytes: number;
  staleReplies: number;
}

export interface AgentTransport {
  readonly backend: AgentBackend;
  /** The sync commands this transport can send, its default first. */
  readonly syncCommands: readonly SyncReport['command'][];
  /**
   * Sends one command (JSON text) and answers the agent's reply text, or null when none is expected: {"return": ...},
   * or {"error": ...} from a transport that does not turn it into an error itself (libvirt does).
   */
  command(dom: DomainRef, json: string, run: TransportRun & { expectReply: boolean }): Promise<string | null>;
  sync(dom: DomainRef, command: SyncReport['command'], run: TransportRun): Promise<SyncReport>;
}

/** Through libvirt, which runs its own guest-sync before every command and holds the domain's agent job. */
export class LibvirtAgentTransport implements AgentTransport {
  readonly backend = 'libvirt' as const;
  /** Never guest-sync-delimited: libvirt cannot parse the 0xFF before that reply and marks the agent broken. */
  readonly syncCommands = ['guest-sync'] as const;

  constructor(private readonly hosts: LibvirtHosts) {}

  /**
   * expectReply is not used: no-reply commands (guest-shutdown, guest-suspend-*) go through libvirt's own
   * agent-aware APIs (PowerService), which know that no reply comes.
   */
  command(dom: DomainRef, json: string, run: TransportRun): Promise<string | null> {
    // libvirt gets a little longer than the gateway's deadline, so that the gateway answers first (504, not
    // libvirt's "not responding") and the queue slot frees when libvirt gives the call up.
    return this.hosts.client(dom).agentCommand(dom, json, Math.max(1, Math.ceil((run.deadlineAt - Date.now()) / 1000) + 1));
  }

  /** libvirt resynchronises on its own; asking it for a guest-sync shows the round trip and that the id comes back. */
  async sync(dom: DomainRef, command: SyncReport['command'], run: TransportRun): Promise<SyncReport> {
    const id = randomInt(0, 2 ** 31);
    const started = performance.now();
    const reply = await this.command(dom, JSON.stringify({ execute: command, arguments: { id } }), run);
    const roundTripMs = Math.round((performance.now() - started) * 100) / 100;
    let returned: unknown;
    try {
      returned = reply === null ? undefined : (parseAgentJson(reply) as { return?: unknown }).return;
    } catch {
      returned = undefined;
    }
    return { command, id, roundTripMs, inStep: returned === id, discardedBytes: 0, staleReplies: 0 };
  }
}
