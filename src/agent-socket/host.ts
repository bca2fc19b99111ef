// src/agent-socket: the backend that reaches guest agents without libvirt, over the unix socket QEMU exposes for
// each VM. This file is its host (the domains, found from the config, and their channels); channel.ts is one
// domain's channel (connection.ts its open socket, dial.ts connecting, resync.ts getting back in step with the
// agent, reply-splitter.ts framing, turns.ts one operation at a time, backoff.ts between failed connects). It raises
// its own errors (errors.ts), which the gateway translates (src/domains/backend-errors.ts); the agent service
// reaches it through its transport (src/agent/transports/agent-socket.ts), and the configuration section is
// src/config/agent-sockets.ts.
//
// The domains whose guest agents are reached straight over their unix sockets, without libvirt: named in the
// config one by one, or found in directories (Proxmox VE's /var/run/qemu-server/*.qga). They answer under one
// host name of their own. A domain is running while its socket exists (QEMU removes it when it exits); it has
// no libvirt UUID, so it gets a stable one made from its socket's path.
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { globMatches } from '../glob.js';
import { isUuid, uuidToString, type DomainStateName } from '../libvirt/protocol.js';
import { AgentSocketChannel } from './channel.js';
import { AgentSocketError } from './errors.js';
import type { AgentStatus, DomainRef } from '../domains/vocabulary.js';

type SocketsConfig = Config['agentSockets'];

/** A stable UUID (version 5 layout) for a socket path: the same path names the same domain across restarts. */
export function uuidForSocket(path: string): string {
  const h = createHash('sha256').update(`qga-gateway agent socket ${path}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  return uuidToString(h.subarray(0, 16));
}

/** {file} and {stem} of a directory entry: the domain name its directory rule gives. */
export function nameFromFile(template: string, file: string): string {
  const dot = file.lastIndexOf('.');
  const stem = dot > 0 ? file.slice(0, dot) : file;
  return template.replaceAll('{file}', file).replaceAll('{stem}', stem);
}

interface Entry {
  name: string;
  path: string;
  uuid: string;
}

/** One reading of the configuration and the directories, indexed: lookups stay O(1) with hundreds of sockets. */
interface Scan {
  at: number;
  entries: Entry[];
  byName: Map<string, Entry>;
  /** By UUID in lower case without dashes. */
  byUuid: Map<string, Entry>;
}

const uuidKey = (uuid: string) => uuid.toLowerCase().replace(/-/g, '');

export class AgentSocketHost {
  readonly name: string;
  private readonly channels = new Map<string, AgentSocketChannel>();
  private scanned: Scan | null = null;
  private scanning: Promise<Scan> | null = null;
  private readonly warned = new Set<string>();
  private closed = false;

  constructor(
    private readonly config: SocketsConfig,
    private readonly log: Logger,
  ) {
    this.name = config.host;
  }

  /** Every configured domain: the explicit ones first, then each directory's, a name taken only once. */
  async entries(): Promise<Entry[]> {
    return (await this.scan()).entries;
  }

  /**
   * The last reading while it is fresh; else one new reading, shared by every caller that asks meanwhile: every
   * command asks (for its socket's path), and with hundreds in flight when the reading goes stale, each starting its own
   * would read the directories and hash every path hundreds of times at once.
   */
  private scan(): Promise<Scan> {
    if (this.scanned && Date.now() - this.scanned.at < this.config.rescanMs) return Promise.resolve(this.scanned);
    this.scanning ??= this.rescan().finally(() => (this.scanning = null));
    return this.scanning;
  }

  private async rescan(): Promise<Scan> {
    // A path keeps its UUID: no hash again for the sockets already known.
    const known = new Map(this.scanned?.entries.map((e) => [e.path, e.uuid]));
    const byName = new Map<string, Entry>();
    const add = (name: string, path: string) => {
      const taken = byName.get(name);
      if (!taken) byName.set(name, { name, path, uuid: known.get(path) ?? uuidForSocket(path) });
      else if (taken.path !== path && !this.warned.has(path)) {
        this.warned.add(path);
        this.log.warn({ domain: name, path, kept: taken.path }, 'two agent sockets give the same domain name; the first is kept');
      }
    };
    for (const s of this.config.sockets) add(s.name, s.path);
    for (const d of this.config.directories) {
      const dir = dirname(d.glob);
      const glob = basename(d.glob);
      let files: string[];
      try {
        files = (await readdir(dir)).filter((f) => globMatches(glob, f)).sort();
      } catch (err) {
        // A directory that is not there yet (no VM started) holds no domains.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          this.log.warn({ dir, err: (err as Error).message }, 'cannot read an agent socket directory');
        files = [];
      }
      for (const f of files) add(nameFromFile(d.name, f), `${dir}/${f}`);
    }
    const entries = [...byName.values()];
    this.scanned = { at: Date.now(), entries, byName, byUuid: new Map(entries.map((e) => [uuidKey(e.uuid), e])) };
    return this.scanned;
  }

  private async isRunning(path: string): Promise<boolean> {
    try {
      return (await stat(path)).isSocket();
    } catch {
      return false;
    }
  }

  private async toRef(e: Entry): Promise<DomainRef> {
    // No libvirt id: 0 while running (so that "running" tests see it as such), -1 while not.
    return { host: this.name, name: e.name, uuid: e.uuid, id: (await this.isRunning(e.path)) ? 0 : -1 };
  }

  async list(): Promise<DomainRef[]> {
    return Promise.all((await this.entries()).map((e) => this.toRef(e)));
  }

  /** By name, or by the UUID made from its socket path (any case, dashes optional). */
  async lookup(id: string): Promise<DomainRef> {
    const { byName, byUuid } = await this.scan();
    const e = byName.get(id) ?? (isUuid(id) ? byUuid.get(uuidKey(id)) : undefined);
    if (!e)
      throw new AgentSocketError('no_such_domain', `no agent socket domain named or with UUID '${id}' on host ${this.name}`, {
        domain: id,
        host: this.name,
      });
    return this.toRef(e);
  }

  async describe(ref: DomainRef): Promise<{ state: DomainStateName; agent: AgentStatus }> {
    const e = await this.entryOf(ref);
    if (!(await this.isRunning(e.path))) return { state: 'shutoff', agent: { state: 'disconnected', channel: true } };
    const channel = this.channels.get(e.path);
    const state = channel?.state === 'connected' ? 'connected' : channel?.state === 'disconnected' ? 'disconnected' : 'unknown';
    return { state: 'running', agent: { state, channel: true } };
  }

  private async entryOf(ref: DomainRef): Promise<Entry> {
    const e = (await this.scan()).byUuid.get(uuidKey(ref.uuid));
    if (!e)
      throw new AgentSocketError('no_such_domain', `the agent socket of ${ref.name} is no longer configured`, {
        domain: ref.name,
        host: this.name,
      });
    return e;
  }

  /** The domain's channel, made on first use; 409 when its socket is gone (QEMU is not running). */
  async channel(ref: DomainRef): Promise<AgentSocketChannel> {
    if (this.closed) throw new AgentSocketError('closed', 'the gateway is shutting down', { domain: ref.name });
    const e = await this.entryOf(ref);
    if (!(await this.isRunning(e.path))) {
      throw new AgentSocketError('not_running', `domain ${ref.name} is not running: no agent socket at ${e.path}`, {
        domain: ref.name,
        host: this.name,
      });
    }
    let channel = this.channels.get(e.path);
    if (!channel) {
      channel = new AgentSocketChannel({
        path: e.path,
        connectTimeoutMs: this.config.connectTimeoutMs,
        syncTimeoutMs: this.config.syncTimeoutMs,
        maxReplyBytes: this.config.maxReplyBytes,
        log: this.log.child({ domain: ref.name, socket: e.path }),
      });
      this.channels.set(e.path, channel);
    }
    return channel;
  }

  /** Channels open and in step now. */
  get connectedCount(): number {
    let connected = 0;
    for (const c of this.channels.values()) if (c.state === 'connected') connected++;
    return connected;
  }

  /** Channels open now, and domains configured: for GET /hosts. */
  async summary(): Promise<{ domains: number; connected: number }> {
    return { domains: (await this.entries()).length, connected: this.connectedCount };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.channels.values()].map((c) => c.close()));
    this.channels.clear();
  }
}
