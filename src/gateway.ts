// The composition root: the libvirt connections and the services built on them, started and stopped together.
import type { Logger } from 'pino';
import { GuestFileService } from './agent/files.js';
import { FreezeService } from './agent/freeze.js';
import { FreezeRegistry } from './agent/freeze-registry.js';
import { AgentService } from './agent/service.js';
import type { Config } from './config/schema.js';
import { AgentStateTracker } from './domains/agent-state.js';
import { DomainDirectory } from './domains/directory.js';
import { LibvirtHosts } from './libvirt/hosts.js';
import { GatewayMetrics } from './metrics/gateway-metrics.js';

export class Gateway {
  /** Every libvirt daemon served, each with its own connections and events. */
  readonly hosts: LibvirtHosts;
  readonly agentStates: AgentStateTracker;
  readonly domains: DomainDirectory;
  readonly agent: AgentService;
  readonly freeze: FreezeService;
  /** Open guest file handles; closed on every path, shutdown included. */
  readonly files: GuestFileService;
  /** GET /metrics: this gateway's own registry, fed by the services above. */
  readonly metrics: GatewayMetrics;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {
    this.hosts = LibvirtHosts.fromConfig(config.libvirt, log);
    this.agentStates = new AgentStateTracker(this.hosts);
    this.domains = new DomainDirectory(this.hosts, this.agentStates, config.domains.cacheTtlMs);
    // Commands to a domain whose file systems the gateway froze are refused (409) before they queue.
    const freezes = new FreezeRegistry();
    this.agent = new AgentService(this.hosts, config.agent);
    this.agent.addGuard(freezes);
    this.freeze = new FreezeService(this.agent, freezes, config.freeze, this.hosts, log.child({ component: 'freeze' }));
    this.files = new GuestFileService(this.agent, config.files, log.child({ component: 'files' }));
    const libvirtHosts = this.hosts.list.map((h) => ({ host: h.name, pool: h.pool }));
    this.metrics = new GatewayMetrics(config.metrics, { agent: this.agent, agentStates: this.agentStates, freezes, files: this.files, libvirtHosts });
    // What an agent offers can change whenever it reconnects, and with the domain.
    const caps = this.agent.capabilityCache;
    this.agentStates.onChange((key, status) => caps.onAgentChange(key, status));
    this.hosts.on('lifecycle', ({ key }) => caps.invalidate(key));
    this.hosts.on('eventsLost', () => caps.clear());
  }

  /** Starts connecting; the gateway serves (and /readyz says not ready) until libvirt answers. */
  start(): void {
    for (const h of this.hosts.list) this.log.info({ host: h.name, uri: h.uri, connections: h.pool.size }, 'connecting to libvirt');
    this.hosts.start();
  }

  /** Lets in-flight agent commands finish or reach their deadline, then closes the libvirt connections. */
  async close(graceMs: number): Promise<void> {
    // A freeze left in place hangs the guest's writers: thaw before the queue closes.
    await this.freeze.thawAll(Math.min(graceMs, 10_000));
    // Guest file handles first, while the agent queue still takes their guest-file-close.
    if (!(await this.files.close(graceMs))) this.log.warn({ graceMs }, 'guest file handles still open at shutdown');
    const drained = await this.agent.close(graceMs);
    if (!drained) this.log.warn({ graceMs }, 'agent commands still running at shutdown; closing anyway');
    await this.hosts.close();
  }
}
