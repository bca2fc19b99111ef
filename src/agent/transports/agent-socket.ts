// Straight over the agent's own socket: the domain's channel (src/agent-socket) carries the command. Raises what the
// channel and the sockets' host raise (AgentSocketError); the agent service translates it
// (src/domains/backend-errors.ts).
import { AgentSocketError, type AgentSocketErrorCode } from '../../agent-socket/errors.js';
import type { AgentSocketHost } from '../../agent-socket/host.js';
import type { DomainRef } from '../../domains/vocabulary.js';
import type { AgentTransport, SyncReport, TransportRun } from './transport.js';

/** The channel could not be used: the agent (or the guest) may have restarted meanwhile. */
const LOST: ReadonlySet<AgentSocketErrorCode> = new Set<AgentSocketErrorCode>(['not_connected', 'not_running', 'busy', 'unresponsive']);

export class AgentSocketTransport implements AgentTransport {
  readonly backend = 'agent-socket' as const;
  readonly syncCommands = ['guest-sync-delimited', 'guest-sync'] as const;

  constructor(
    private readonly host: AgentSocketHost,
    /** Told when a domain's channel could not be used: the agent may come back as another version. */
    private readonly onChannelLost: (dom: DomainRef) => void = () => {},
  ) {}

  /** The reply text as it came; an {"error": ...} reply becomes agent_error in the agent service, as for every transport. */
  async command(dom: DomainRef, json: string, run: TransportRun & { expectReply: boolean }): Promise<string | null> {
    try {
      return await (await this.host.channel(dom)).command(json, { signal: run.signal, expectReply: run.expectReply });
    } catch (err) {
      if (err instanceof AgentSocketError && LOST.has(err.code)) this.onChannelLost(dom);
      throw err;
    }
  }

  async sync(dom: DomainRef, command: SyncReport['command'], run: TransportRun): Promise<SyncReport> {
    return (await this.host.channel(dom)).sync(command, { signal: run.signal });
  }
}
