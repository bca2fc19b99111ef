// The agent service's last step for domains reached over their agent socket: the channel carries the command.
import type { AgentTransport, SyncReport, TransportRun } from './transport.js';
import { GatewayError } from '../../errors.js';
import type { AgentSocketHost } from '../../agent-socket/host.js';
import type { DomainRef } from '../../domains/vocabulary.js';

const LOST = new Set(['agent_not_connected', 'domain_not_running', 'agent_busy', 'agent_unresponsive']);

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
      if (err instanceof GatewayError && LOST.has(err.code)) this.onChannelLost(dom);
      throw err;
    }
  }

  async sync(dom: DomainRef, command: SyncReport['command'], run: TransportRun): Promise<SyncReport> {
    return (await this.host.channel(dom)).sync(command, { signal: run.signal });
  }
}
