// Through libvirt: virDomainQemuAgentCommand on the domain's host (src/libvirt). Raises what the wire client
// raises (LibvirtError, ConnectionError); the agent service translates them (src/domains/backend-errors.ts).
import { randomInt } from 'node:crypto';
import type { DomainRef } from '../../domains/vocabulary.js';
import type { LibvirtHosts } from '../../libvirt/hosts.js';
import { parseAgentJson } from './agent-json.js';
import type { AgentTransport, SyncReport, TransportRun } from './transport.js';

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
