// The agent's transports: how a command reaches a domain's guest agent, side by side. libvirt.ts goes through
// libvirt (virDomainQemuAgentCommand, over the wire client of src/libvirt); agent-socket.ts straight over the
// agent's own socket (the channel of src/agent-socket). The agent service (core/service.ts) queues, gates and times
// calls the same way for both; only this last step differs. Each transport raises its own backend's errors
// (libvirt's LibvirtError and ConnectionError; the socket's AgentSocketError, src/agent-socket/errors.ts), and the
// service turns them into the gateway's in one place, src/domains/backend-errors.ts.
import type { SyncReport } from '../../agent-socket/resync.js';
import type { AgentBackend, DomainRef } from '../../domains/vocabulary.js';

/** The sync report is the agent socket channel's, which alone can tell what it discarded; libvirt's transport fills the same fields. */
export type { SyncReport };

/** One call's run: its deadline, and a signal that aborts at the deadline or when the caller goes away. */
export interface TransportRun {
  deadlineAt: number;
  signal: AbortSignal;
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
