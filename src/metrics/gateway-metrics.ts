// The gateway's Prometheus metrics, in a registry of this gateway's own (never prom-client's global one), so that
// one process can build several gateways (the tests do) without "metric already registered". Gauges are read
// from the services' own state when scraped; counters and histograms are fed by the agent queue's observer, the
// guest file service and the HTTP onResponse hook.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FileTransferObserver } from '../agent/files/guest-file.js';
import type { AgentCallObserver } from '../agent/core/service.js';
import type { Config } from '../config/schema.js';
import type { LibvirtPool } from '../libvirt/pool.js';
import { commandLabel, methodLabel, outcomeOf, routeLabel } from './labels.js';
import { METRIC_PREFIX, processMetrics } from './process-metrics.js';
import { domainKey, type DomainRef } from '../domains/vocabulary.js';

/** One libvirt daemon's pool, by the host name the config gives it. */
export interface LibvirtHostRef {
  host: string;
  pool: Pick<LibvirtPool, 'up' | 'reconnects'>;
}

/** What the metrics read or listen to; the Gateway's services fit these as they are. */
export interface MetricsSources {
  agent: { readonly totalQueueDepth: number; queueDepth(dom: DomainRef): number; observe(observer: AgentCallObserver): void };
  agentStates: { readonly connectedCount: number };
  freezes: { readonly frozenCount: number };
  files: { observeTransfers(observer: FileTransferObserver): void };
  libvirtHosts: readonly LibvirtHostRef[];
  /** GET /events; null when events are off. */
  events: { readonly streamCount: number; readonly published: ReadonlyMap<string, number>; readonly dropped: number } | null;
}

// Seconds. Agent calls run from milliseconds (guest-ping) to the longest deadline a request may ask for (minutes).
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const AGENT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const name = (suffix: string) => METRIC_PREFIX + suffix;

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route'>;
  private readonly agentCommands: Histogram<string>;
  /** The label children of each method, status and route seen: prom-client validates labels on every call otherwise. */
  private readonly requestChildren = new Map<string, { count: { inc(): void }; duration: { observe(v: number): void } }>();
  /** Domains whose queue depth is reported per domain (perDomainLabels): those queued on since the last scrape found them idle. */
  private readonly queuedDomains = new Map<string, DomainRef>();

  constructor(
    private readonly config: Config['metrics'],
    sources: MetricsSources,
  ) {
    const registers = [this.registry];
    const perDomain = config.perDomainLabels;
    const domainLabels = perDomain ? ['host', 'domain'] : [];

    this.httpRequests = new Counter({
      name: name('http_requests_total'),
      help: 'HTTP requests answered, by method, route pattern ("unmatched" when none matched) and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: name('http_request_duration_seconds'),
      help: 'Time from receiving an HTTP request to the end of its answer (downloads included), by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.agentCommands = new Histogram({
      name: name('agent_command_duration_seconds'),
      help:
        'Guest agent calls, from queueing to the end (queue wait included), by command (names outside qemu-ga\'s schema: "other") and outcome: ' +
        'ok, agent_error, not_supported, timeout (the deadline passed), queue_full, unavailable (agent, domain or libvirt not there), client_gone, error.' +
        (perDomain ? ' Per domain (metrics.perDomainLabels).' : ''),
      labelNames: ['command', 'outcome', ...domainLabels],
      buckets: AGENT_BUCKETS,
      registers,
    });
    const queueRejections = new Counter({
      name: name('agent_queue_rejections_total'),
      help: "Agent commands refused because their domain's queue was full (503 agent_queue_full).",
      registers,
    });
    const { agent, agentStates, freezes, files, libvirtHosts, events } = sources;

    const queueDepth: Gauge<string> = new Gauge({
      name: name('agent_queue_depth'),
      help: `Agent commands running or waiting in the per-domain queues${perDomain ? ', per domain.' : ', all domains together.'}`,
      labelNames: domainLabels,
      registers,
      collect: () => {
        queueDepth.reset();
        if (!perDomain) return void queueDepth.set(agent.totalQueueDepth);
        for (const [key, dom] of this.queuedDomains) {
          const depth = agent.queueDepth(dom);
          queueDepth.set({ host: dom.host, domain: dom.name }, depth);
          // Reported as 0 once, then dropped: the table holds only domains that were busy lately.
          if (depth === 0) this.queuedDomains.delete(key);
        }
      },
    });
    const agentsConnected: Gauge = new Gauge({
      name: name('agents_connected'),
      help: 'Domains whose guest agent is connected, as libvirt events and domain XML have told the gateway.',
      registers,
      collect: () => agentsConnected.set(agentStates.connectedCount),
    });
    const connectionsUp: Gauge<'host'> = new Gauge({
      name: name('libvirt_connections_up'),
      help: 'Open connections to the libvirt daemon of each host.',
      labelNames: ['host'],
      registers,
      collect: () => {
        for (const h of libvirtHosts) connectionsUp.set({ host: h.host }, h.pool.up);
      },
    });
    const reconnects: Counter<'host'> = new Counter({
      name: name('libvirt_reconnects_total'),
      help: "Connections to each host's libvirt daemon opened again after one dropped or failed.",
      labelNames: ['host'],
      registers,
      collect: () => {
        // The pool counts; the counter only reports its count.
        reconnects.reset();
        for (const h of libvirtHosts) reconnects.inc({ host: h.host }, h.pool.reconnects);
      },
    });
    const freezesInForce: Gauge = new Gauge({
      name: name('freezes_in_force'),
      help: 'Domains whose file systems the gateway holds frozen now (each thaws at its deadline at the latest).',
      registers,
      collect: () => freezesInForce.set(freezes.frozenCount),
    });
    if (events) {
      const streams: Gauge = new Gauge({
        name: name('event_streams'),
        help: 'GET /events streams open now (at most events.maxClients).',
        registers,
        collect: () => streams.set(events.streamCount),
      });
      const published: Counter<'type'> = new Counter({
        name: name('events_total'),
        help: 'Events published to the streams, by type (domain, agent, addresses, host).',
        labelNames: ['type'],
        registers,
        collect: () => {
          published.reset();
          for (const [type, n] of events.published) published.inc({ type }, n);
        },
      });
      const dropped: Counter = new Counter({
        name: name('event_streams_dropped_total'),
        help: 'Streams ended with an overflow event: their client let more than events.clientQueueBytes wait.',
        registers,
        collect: () => {
          dropped.reset();
          dropped.inc(events.dropped);
        },
      });
    }
    const fileRead = new Counter({
      name: name('file_read_bytes_total'),
      help: 'Bytes read from guest files (guest-file-read).',
      registers,
    });
    const fileWritten = new Counter({
      name: name('file_written_bytes_total'),
      help: 'Bytes written to guest files (guest-file-write).',
      registers,
    });

    if (!config.enabled) return;
    agent.observe({
      queued: (dom) => {
        if (perDomain) this.queuedDomains.set(domainKey(dom), dom);
      },
      settled: (dom, execute, seconds, error) => {
        const outcome = outcomeOf(error);
        const command = commandLabel(execute);
        this.agentCommands.observe(perDomain ? { command, outcome, host: dom.host, domain: dom.name } : { command, outcome }, seconds);
        if (outcome === 'queue_full') queueRejections.inc();
      },
    });
    files.observeTransfers({ read: (bytes) => fileRead.inc(bytes), written: (bytes) => fileWritten.inc(bytes) });
    processMetrics(); // starts the process collectors with the first gateway that serves metrics
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  /** Called once per answered request (onResponse). */
  observeRequest(method: string, routeUrl: string | undefined, status: number, seconds: number): void {
    const labels = { method: methodLabel(method), route: routeLabel(routeUrl) };
    const key = `${labels.method} ${status} ${labels.route}`;
    let children = this.requestChildren.get(key);
    if (!children) {
      children = { count: this.httpRequests.labels({ ...labels, status: String(status) }), duration: this.httpDuration.labels(labels) };
      // Bounded as the labels are: methods, route patterns and statuses, each a short list.
      this.requestChildren.set(key, children);
    }
    children.count.inc();
    children.duration.observe(seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition: the process's metrics, then this gateway's. */
  async text(): Promise<string> {
    const [process, own] = await Promise.all([processMetrics().metrics(), this.registry.metrics()]);
    return process + own;
  }
}
