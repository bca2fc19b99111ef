// The agent service's last step for domains reached over their agent socket: the channel carries the command,
// and an {"error": ...} reply becomes agent_error just as libvirt's folded message does for libvirt domains.
import { agentError } from '../agent/error-mapping.js';
import type { AgentTransport, SyncReport, TransportRun } from '../agent/transport.js';
import { GatewayError } from '../errors.js';
import type { DomainRef } from '../libvirt/client.js';
import type { AgentSocketHost } from './host.js';

const LOST = new Set(['agent_not_connected', 'domain_not_running', 'agent_busy', 'agent_unresponsive']);

export class AgentSocketTransport implements AgentTransport {
  readonly backend = 'agent-socket' as const;
  readonly syncCommands = ['guest-sync-delimited', 'guest-sync'] as const;

  constructor(
    private readonly host: AgentSocketHost,
    /** Told when a domain's channel could not be used: the agent may come back as another version. */
    private readonly onChannelLost: (dom: DomainRef) => void = () => {},
  ) {}

  async command(dom: DomainRef, json: string, run: TransportRun & { expectReply: boolean }): Promise<string | null> {
    let reply: string | null;
    try {
      reply = await (await this.host.channel(dom)).command(json, { signal: run.signal, expectReply: run.expectReply });
    } catch (err) {
      if (err instanceof GatewayError && LOST.has(err.code)) this.onChannelLost(dom);
      throw err;
    }
    if (reply === null) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(reply);
    } catch {
      return reply; // the agent service reports a reply that is not JSON
    }
    if (parsed && typeof parsed === 'object' && 'error' in parsed) {
      const { class: agentClass, desc } = ((parsed as { error: unknown }).error ?? {}) as { class?: unknown; desc?: unknown };
      const execute = (JSON.parse(json) as { execute?: string }).execute ?? 'command';
      throw agentError(execute, typeof desc === 'string' ? desc : '', typeof agentClass === 'string' ? agentClass : 'GenericError', { domain: dom.name, command: execute });
    }
    return reply;
  }

  async sync(dom: DomainRef, command: SyncReport['command'], run: TransportRun): Promise<SyncReport> {
    return (await this.host.channel(dom)).sync(command, { signal: run.signal });
  }
}
