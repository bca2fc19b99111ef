// The composition root: the libvirt connections and the services built on them, started and stopped together.
import type { Logger } from 'pino';
import { GuestFileService } from './agent/files.js';
import { FreezeService } from './agent/freeze.js';
import { FreezeRegistry } from './agent/freeze-registry.js';
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
  readonly freeze: FreezeService;
  /** Open guest file handles; closed on every path, shutdown included. */
  readonly files: GuestFileService;

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
    // Commands to a domain whose file systems the gateway froze are refused (409) before they queue.
    const freezes = new FreezeRegistry();
    this.agent = new AgentService(this.libvirt, config.agent);
    this.agent.addGuard(freezes);
    this.freeze = new FreezeService(this.agent, freezes, config.freeze, this.pool, log.child({ component: 'freeze' }));
    this.files = new GuestFileService(this.agent, config.files, log.child({ component: 'files' }));
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
    // A freeze left in place hangs the guest's writers: thaw before the queue closes.
    await this.freeze.thawAll(Math.min(graceMs, 10_000));
    // Guest file handles first, while the agent queue still takes their guest-file-close.
    if (!(await this.files.close(graceMs))) this.log.warn({ graceMs }, 'guest file handles still open at shutdown');
    const drained = await this.agent.close(graceMs);
    if (!drained) this.log.warn({ graceMs }, 'agent commands still running at shutdown; closing anyway');
    await this.pool.close();
  }
}
