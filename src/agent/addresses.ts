// Every running domain's guest-network-get-interfaces in one call, for fleet callers: fanned out at once
// under one deadline, each domain's answer (or error) cached for a short TTL and dropped sooner when libvirt
// says the domain or its agent changed (lifecycle and agent-lifecycle events).
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { DomainRef, LibvirtClient } from '../libvirt/client.js';
import type { LibvirtPool } from '../libvirt/pool.js';
import { isUuid, uuidToString } from '../libvirt/protocol.js';
import { guestNetworkGetInterfaces, type GuestNetworkInterfaces } from './commands.js';
import { mapLibvirtError } from './error-mapping.js';
import type { AgentService } from './service.js';

export type AddressResult = { ok: true; interfaces: GuestNetworkInterfaces } | { ok: false; error: GatewayError };

export interface AddressEntry {
  name: string;
  /** null for a filter entry that names no domain. */
  uuid: string | null;
  result: AddressResult;
  fetchedAt: Date;
  cached: boolean;
}

/** Errors that stay true until an event says otherwise: worth caching. Transient ones are asked again. */
const STABLE_ERRORS = new Set(['agent_not_configured', 'command_not_supported']);

interface CacheEntry {
  result: AddressResult;
  fetchedAt: Date;
  expires: number;
}

export class AddressBook {
  private readonly cache = new Map<string, CacheEntry>();
  /** One fetch per domain at a time, shared by concurrent callers. */
  private readonly inFlight = new Map<string, Promise<CacheEntry>>();

  constructor(
    private readonly libvirt: LibvirtClient,
    private readonly agent: AgentService,
    pool: LibvirtPool,
    private readonly config: Config['addresses'],
  ) {
    pool.on('lifecycle', ({ dom }) => this.cache.delete(uuidToString(dom.uuid)));
    pool.on('agentLifecycle', ({ dom }) => this.cache.delete(uuidToString(dom.uuid)));
    pool.on('eventsLost', () => this.cache.clear());
  }

  get defaultTimeoutMs(): number {
    return this.config.timeoutMs;
  }

  /**
   * Running domains' addresses, or those the filter names (names or UUIDs; a filter also lists stopped and
   * unknown domains, with their error). Resolves by the deadline: a domain still silent then gets deadline_exceeded.
   */
  async collect(filter: string[] | null, timeoutMs: number, signal?: AbortSignal, mayTouch: (dom: DomainRef) => boolean = () => true): Promise<AddressEntry[]> {
    const deadlineAt = Date.now() + timeoutMs;
    let all: DomainRef[];
    try {
      // Domains the caller may not touch are never asked, and look just like ones that do not exist.
      all = (await this.libvirt.listAllDomains(signal)).filter(mayTouch);
    } catch (err) {
      throw mapLibvirtError(err);
    }
    const targets: (DomainRef | { missing: string })[] = filter ? filter.map((token) => findDomain(all, token) ?? { missing: token }) : all.filter((d) => d.id >= 0);
    // No abort signal reaches the fetches: each has the deadline as its own, ends by itself, and may be
    // shared with a concurrent caller whose deadline is later; what it learns fills the cache.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => (timer = setTimeout(() => resolve('deadline'), Math.max(0, deadlineAt - Date.now()))));
    try {
      const entries = await Promise.all(targets.map((t) => this.entryFor(t, deadlineAt, deadline, timeoutMs)));
      return entries.sort((a, b) => a.name.localeCompare(b.name));
    } finally {
      clearTimeout(timer);
    }
  }

  private async entryFor(target: DomainRef | { missing: string }, deadlineAt: number, deadline: Promise<'deadline'>, timeoutMs: number): Promise<AddressEntry> {
    if ('missing' in target) {
      const error = new GatewayError('domain_not_found', `no domain named or with UUID '${target.missing}'`, { domain: target.missing });
      return { name: target.missing, uuid: null, result: { ok: false, error }, fetchedAt: new Date(), cached: false };
    }
    const dom = target;
    if (dom.id < 0) {
      const error = new GatewayError('domain_not_running', `domain ${dom.name} is not running`, { domain: dom.name });
      return { name: dom.name, uuid: dom.uuid, result: { ok: false, error }, fetchedAt: new Date(), cached: false };
    }
    const hit = this.cache.get(dom.uuid);
    if (hit && hit.expires > Date.now()) return { name: dom.name, uuid: dom.uuid, result: hit.result, fetchedAt: hit.fetchedAt, cached: true };
    const fetched = await Promise.race([this.fetch(dom, deadlineAt), deadline]);
    if (fetched === 'deadline') {
      const error = new GatewayError('deadline_exceeded', `the guest agent did not answer within the ${timeoutMs} ms deadline`, { domain: dom.name, command: guestNetworkGetInterfaces.execute });
      return { name: dom.name, uuid: dom.uuid, result: { ok: false, error }, fetchedAt: new Date(), cached: false };
    }
    return { name: dom.name, uuid: dom.uuid, result: fetched.result, fetchedAt: fetched.fetchedAt, cached: false };
  }

  private fetch(dom: DomainRef, deadlineAt: number): Promise<CacheEntry> {
    const pending = this.inFlight.get(dom.uuid);
    if (pending) return pending;
    const run = (async (): Promise<CacheEntry> => {
      let result: AddressResult;
      try {
        const timeoutMs = Math.max(1, deadlineAt - Date.now());
        result = { ok: true, interfaces: await this.agent.execute(dom, guestNetworkGetInterfaces, undefined, { timeoutMs }) };
      } catch (err) {
        result = { ok: false, error: mapLibvirtError(err, { domain: dom.name }) };
      }
      const entry: CacheEntry = { result, fetchedAt: new Date(), expires: Date.now() + this.config.cacheTtlMs };
      if (this.config.cacheTtlMs > 0 && (result.ok || STABLE_ERRORS.has(result.error.code))) this.cache.set(dom.uuid, entry);
      return entry;
    })();
    this.inFlight.set(dom.uuid, run);
    void run.finally(() => this.inFlight.delete(dom.uuid));
    return run;
  }
}

function findDomain(all: DomainRef[], token: string): DomainRef | undefined {
  if (isUuid(token)) {
    const wanted = token.toLowerCase().replace(/-/g, '');
    const byUuid = all.find((d) => d.uuid.replace(/-/g, '') === wanted);
    if (byUuid) return byUuid;
  }
  return all.find((d) => d.name === token);
}
