// The composition root: the libvirt connections, the agent sockets and every service built on them, created here
// once, started and stopped together. The HTTP routes are given these services (http/routes), and create none.
import type { Logger } from 'pino';
import { AccountService } from './agent/guest/accounts.js';
import { AddressBook } from './agent/guest/addresses.js';
import { ExecService } from './agent/exec/exec-service.js';
import { GuestFileService } from './agent/files/files.js';
import { FreezeService } from './agent/freeze/freeze.js';
import { freezeJournal, type FreezeRecord } from './agent/freeze/freeze-journal.js';
import { FreezeRegistry } from './agent/freeze/freeze-registry.js';
import { PowerService } from './agent/power/power.js';
import { RawCommandService } from './agent/raw/raw-command.js';
import { AgentService } from './agent/core/service.js';
import { LibvirtAgentTransport } from './agent/transports/libvirt.js';
import type { AgentTransport } from './agent/transports/transport.js';
import { uploadJournal, type UploadRecord } from './agent/files/upload-temp.js';
import { UploadService } from './agent/files/uploads.js';
import { AgentSocketHost } from './agent-socket/host.js';
import { AgentSocketTransport } from './agent/transports/agent-socket.js';
import type { Config } from './config/schema.js';
import { AgentStateTracker } from './domains/agent-state.js';
import { DomainDirectory } from './domains/directory.js';
import { EventHub } from './events/hub.js';
import { LibvirtHosts } from './libvirt/hosts.js';
import { GatewayMetrics } from './metrics/gateway-metrics.js';
import { lockStateDir, StateDirInUse } from './state/lock.js';
import { domainKey, type DomainRef } from './domains/vocabulary.js';

export interface GatewayOptions {
  /** Every domain's agent commands go through this transport instead of libvirt or the agent sockets (tests: an in-memory agent). */
  agentTransport?: AgentTransport;
}

export class Gateway {
  /** Every libvirt daemon served, each with its own connections and events. */
  readonly hosts: LibvirtHosts;
  /** Domains whose agents are reached over their own sockets, without libvirt; null when none are configured. */
  readonly agentSockets: AgentSocketHost | null;
  readonly agentStates: AgentStateTracker;
  readonly domains: DomainDirectory;
  readonly agent: AgentService;
  readonly freeze: FreezeService;
  /** Open guest file handles; closed on every path, shutdown included. */
  readonly files: GuestFileService;
  /** Programs in the guests, their results and who started them. */
  readonly exec: ExecService;
  /** PUT of a guest file: atomic replace (temporary file and rename) or in place. */
  readonly uploads: UploadService;
  /** POST /domains/{domain}/agent/commands, and the handles it opened for whom. */
  readonly raw: RawCommandService;
  /** Shutdown, halt, reboot and suspend: libvirt's agent-aware calls, or the agent's own commands over its socket. */
  readonly power: PowerService;
  /** Guest users' passwords and SSH authorized keys. */
  readonly accounts: AccountService;
  /** GET /addresses: every running domain's addresses at once, each cached until libvirt's events say it changed. */
  readonly addresses: AddressBook;
  /** GET /metrics: this gateway's own registry, fed by the services above. */
  readonly metrics: GatewayMetrics;
  /** GET /events: domain, agent, address and host events, and the streams open on them; null when events.enabled is false. */
  readonly events: EventHub | null;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
    options: GatewayOptions = {},
  ) {
    this.hosts = LibvirtHosts.fromConfig(config.libvirt, log);
    const sockets = config.agentSockets;
    this.agentSockets =
      sockets.sockets.length || sockets.directories.length ? new AgentSocketHost(sockets, log.child({ component: 'agent-socket' })) : null;
    this.agentStates = new AgentStateTracker(this.hosts);
    this.domains = new DomainDirectory(this.hosts, this.agentStates, config.domains.cacheTtlMs, this.agentSockets, log);
    const restarted = ({ key }: { key: string }) => {
      this.exec.forgetDomain(key);
      this.raw.forgetDomain(key);
    };
    // Commands to a domain whose file systems the gateway froze are refused (409) before they queue.
    const freezes = new FreezeRegistry((key) => this.freeze.forgetRecord(key));
    const viaLibvirt = new LibvirtAgentTransport(this.hosts);
    // A socket domain has no lifecycle events: its channel going away is the sign that the guest or its agent
    // may have restarted, so what the gateway kept of its pids and handles is dropped as for libvirt's events.
    const viaSocket = this.agentSockets
      ? new AgentSocketTransport(this.agentSockets, (dom) => {
          this.agent.capabilityCache.invalidate(domainKey(dom));
          restarted({ key: domainKey(dom) });
        })
      : null;
    const transportFor = (dom: { host: string }): AgentTransport =>
      options.agentTransport ?? (viaSocket && dom.host === this.agentSockets!.name ? viaSocket : viaLibvirt);
    this.agent = new AgentService(transportFor, config.agent);
    this.agent.addGuard(freezes);
    this.freeze = new FreezeService(
      this.agent,
      freezes,
      freezeJournal(config.state.dir),
      config.freeze,
      this.hosts,
      log.child({ component: 'freeze' }),
    );
    this.files = new GuestFileService(this.agent, config.files, log.child({ component: 'files' }));
    this.exec = new ExecService(this.agent, config.exec);
    this.uploads = new UploadService(
      this.agent,
      this.files,
      uploadJournal(config.state.dir),
      { ...config.files, maxWaitMs: config.exec.maxWaitMs },
      log.child({ component: 'uploads' }),
    );
    this.raw = new RawCommandService(this.agent, config.rawCommands, this.files, this.exec);
    this.power = new PowerService(this.agent, this.hosts);
    this.accounts = new AccountService(this.agent);
    this.addresses = new AddressBook(this.hosts, this.domains, this.agent, config.addresses);
    this.events = config.events.enabled
      ? new EventHub(config.events, {
          hosts: this.hosts,
          sockets: this.agentSockets,
          socketRescanMs: config.agentSockets.rescanMs,
          agent: this.agent,
          directory: this.domains,
        })
      : null;
    const libvirtHosts = this.hosts.list.map((h) => ({ host: h.name, pool: h.pool }));
    // Agents connected: libvirt's (from its events) and the agent sockets' channels in step.
    const connected = () => this.agentStates.connectedCount + (this.agentSockets?.connectedCount ?? 0);
    const agentsConnected = {
      get connectedCount() {
        return connected();
      },
    };
    this.metrics = new GatewayMetrics(config.metrics, {
      agent: this.agent,
      agentStates: agentsConnected,
      freezes,
      files: this.files,
      libvirtHosts,
      events: this.events,
    });
    // What an agent offers can change whenever it reconnects, and with the domain.
    const caps = this.agent.capabilityCache;
    this.agentStates.onChange((key, status) => caps.onAgentChange(key, status));
    this.hosts.on('lifecycle', ({ key }) => caps.invalidate(key));
    // A domain's (or its agent's) restart starts its pids and handles afresh: what the gateway kept of them
    // would describe other processes and files.
    this.hosts.on('lifecycle', restarted);
    this.hosts.on('agentLifecycle', restarted);
    this.hosts.on('eventsLost', () => caps.clear());
  }

  /**
   * Starts connecting, and takes what a previous run left in state.dir: its lock first (another live gateway
   * there stops this one: StateDirInUse), then its records, read before this gateway serves (so that they
   * are surely a dead run's, never this one's). Acting on them goes on in the background (`recovered`).
   */
  async start(): Promise<void> {
    try {
      this.unlockState = lockStateDir(this.config.state.dir);
    } catch (err) {
      if (err instanceof StateDirInUse) throw err;
      this.log.error(
        { dir: this.config.state.dir, err: (err as Error).message },
        'state.dir cannot be written: freezes will be refused (503) and uploads cannot be cleaned up after a crash',
      );
    }
    for (const h of this.hosts.list) this.log.info({ host: h.name, uri: h.uri, connections: h.pool.size }, 'connecting to libvirt');
    if (this.agentSockets)
      this.log.info(
        {
          host: this.agentSockets.name,
          sockets: this.config.agentSockets.sockets.length,
          directories: this.config.agentSockets.directories.map((d) => d.glob),
        },
        'serving agent sockets',
      );
    // Before the hosts connect: their first connection is the first `host` event.
    this.events?.start();
    this.hosts.start();
    const [freezes, uploads] = await Promise.all([this.freeze.readRecords(), this.uploads.readRecords()]);
    this.recovered = this.recoverState(freezes, uploads);
  }

  /** Settles once the records a previous run left in state.dir have all been acted on (tests wait for it). */
  recovered: Promise<void> = Promise.resolve();
  private unlockState: (() => void) | null = null;

  /** What a previous run held when it died: its freezes (thawed at their deadline) and its uploads' temporary files. */
  private async recoverState(freezes: FreezeRecord[], uploads: UploadRecord[]): Promise<void> {
    if (freezes.length === 0 && uploads.length === 0) return;
    const lookup = (host: string, uuid: string): Promise<DomainRef> => this.domains.resolve(`${host}:${uuid}`);
    // Libvirt connects in a few ms: asking before that would only wait for the first retry (2 s).
    await Promise.all(this.hosts.list.map((h) => h.pool.waitUntilUp(5_000).catch(() => {})));
    if (this.closing) return;
    await Promise.all([this.freeze.recover(freezes, lookup), this.uploads.recover(uploads, lookup)]).catch((err: unknown) => {
      this.log.error({ err: (err as Error).message }, 'recovering state from state.dir failed');
    });
  }

  private closing = false;

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    // Streams end (the HTTP server waits for them) and the address watcher sends no more commands.
    this.events?.close();
    // A freeze left in place hangs the guest's writers: thaw before the queue closes.
    await this.freeze.thawAll(Math.min(graceMs, 10_000));
    // Guest file handles first, while the agent queue still takes their guest-file-close.
    if (!(await this.files.close(graceMs))) this.log.warn({ graceMs }, 'guest file handles still open at shutdown');
    // Uploads cut off by the above remove their temporary files (guest-exec) before the queue closes.
    await this.uploads.settle(Math.min(graceMs, 10_000));
    const drained = await this.agent.close(graceMs);
    if (!drained) this.log.warn({ graceMs }, 'agent commands still running at shutdown; closing anyway');
    await Promise.all([this.hosts.close(), this.agentSockets?.close()]);
    this.unlockState?.();
  }
}
