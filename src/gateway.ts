// The composition root: the libvirt connections and the services built on them, started and stopped together.
import type { Logger } from 'pino';
import { AgentService } from './agent/service.js';
import type { Config } from './config/schema.js';
import { AgentStateTracker } from './domains/agent-state.js';
import { DomainDirectory } from './domains/directory.js';
import { LibvirtClient } from './libvirt/client.js';
import { LibvirtPool } from './libvirt/pool.js';
import { uuidToString } from './libvirt/protocol.js';
import { resolveUri } from './libvirt/uri.js';

export class Gateway {
  readonly pool: LibvirtPool;
  readonly libvirt: LibvirtClient;
  readonly agentStates: AgentStateTracker;
  readonly domains: DomainDirectory;
  readonly agent: AgentService;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {
    const { transport, name } = resolveUri(config.libvirt.uri, config.libvirt.socketPath);
    this.pool = new LibvirtPool(
      {
        transport,
        name,
        size: config.libvirt.connections,
        maxCallsPerConnection: config.libvirt.maxCallsPerConnection,
        connectTimeoutMs: config.libvirt.connectTimeoutMs,
        keepaliveIntervalMs: config.libvirt.keepaliveIntervalMs,
        keepaliveCount: config.libvirt.keepaliveCount,
        backoffInitialMs: config.libvirt.backoffInitialMs,
        backoffMaxMs: config.libvirt.backoffMaxMs,
      },
      log.child({ component: 'libvirt' }),
    );
    this.libvirt = new LibvirtClient(this.pool);
    this.agentStates = new AgentStateTracker(this.pool);
    this.domains = new DomainDirectory(this.libvirt, this.pool, this.agentStates, config.domains.cacheTtlMs);
    this.agent = new AgentService(this.libvirt, config.agent);
    // What an agent offers can change whenever it reconnects, and with the domain.
    const caps = this.agent.capabilityCache;
    this.agentStates.onChange((uuid, status) => caps.onAgentChange(uuid, status));
    this.pool.on('lifecycle', ({ dom }) => caps.invalidate(uuidToString(dom.uuid)));
    this.pool.on('eventsLost', () => caps.clear());
  }

  /** Starts connecting; the gateway serves (and /readyz says not ready) until libvirt answers. */
  start(): void {
    const where = this.config.libvirt.uri;
    this.log.info({ uri: where, connections: this.config.libvirt.connections }, 'connecting to libvirt');
    this.pool.start();
  }

  /** Lets in-flight agent commands finish or reach their deadline, then closes the libvirt connections. */
  async close(graceMs: number): Promise<void> {
    const drained = await this.agent.close(graceMs);
    if (!drained) this.log.warn({ graceMs }, 'agent commands still running at shutdown; closing anyway');
    await this.pool.close();
  }
}
