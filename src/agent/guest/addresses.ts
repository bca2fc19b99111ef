// Every running domain's guest-network-get-interfaces in one call, for fleet callers: fanned out under one
// deadline, at most addresses.concurrency domains asked at once over every caller (one that has not answered within
// addresses.slotHoldMs no longer counts), each domain's answer (or error) cached for a short TTL and dropped sooner
// when libvirt says the domain or its agent changed (lifecycle and agent-lifecycle events).
import type { Config } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import type { DomainDirectory } from '../../domains/directory.js';
import type { NovaInstance } from '../../domains/nova-metadata.js';
import type { LibvirtHosts } from '../../libvirt/hosts.js';
import { isUuid } from '../../libvirt/protocol.js';
import { guestNetworkGetInterfaces, type GuestNetworkInterfaces } from '../commands/network.js';
import { backendError } from '../../domains/backend-errors.js';
import type { AgentService } from '../core/service.js';
import { Slots } from '../core/slots.js';
import { byNameThenHost, domainKey, type DomainRef, type SignalSource } from '../../domains/vocabulary.js';

export type AddressResult = { ok: true; interfaces: GuestNetworkInterfaces } | { ok: false; error: GatewayError };

/** A domain to ask (or a filter's name that names none), with the filter's name that found it (null: no filter). */
interface Named {
  target: DomainRef | { missing: string };
  token: string | null;
}

export interface AddressEntry {
  /** null for a filter entry that names no domain. */
  host: string | null;
  name: string;
  /** null for a filter entry that names no domain. */
  uuid: string | null;
  result: AddressResult;
  fetchedAt: Date;
  cached: boolean;
  /** What Nova wrote into the domain's metadata, when it did. */
  nova?: NovaInstance;
}

/** Errors that stay true until an event says otherwise: worth caching. Transient ones are asked again. */
const STABLE_ERRORS = new Set(['agent_not_configured', 'command_not_supported']);

interface CacheEntry {
  result: AddressResult;
  fetchedAt: Date;
  expires: number;
  /**
   * The entry answered from this result, made once and given again while the domain keeps its name and Nova
   * metadata: a poll answered from the cache then hands the route the same objects, which it uses to keep its answer.
   */
  answered?: AddressEntry;
}

export class AddressBook {
  private readonly cache = new Map<string, CacheEntry>();
  /**
   * One fetch per domain at a time, shared by concurrent callers; its deadline is the latest of theirs, so that a
   * caller with time left is not given up for one whose deadline passed while the domain waited for its turn.
   */
  private readonly inFlight = new Map<string, { entry: Promise<CacheEntry>; deadlineAt: number }>();
  /** Fetches running at once, over every caller: the fan-out's bound (addresses.concurrency). */
  private readonly slots: Slots;
  /** Domains whose fetch has had its turn (sent, or decided): the others are still waiting for a slot. */
  private readonly asking = new Set<string>();

  constructor(
    hosts: LibvirtHosts,
    private readonly directory: DomainDirectory,
    private readonly agent: AgentService,
    private readonly config: Config['addresses'],
  ) {
    this.slots = new Slots(config.concurrency);
    hosts.on('lifecycle', ({ key }) => this.cache.delete(key));
    hosts.on('agentLifecycle', ({ key }) => this.cache.delete(key));
    hosts.on('eventsLost', () => this.cache.clear());
  }

  get defaultTimeoutMs(): number {
    return this.config.timeoutMs;
  }

  /**
   * Running domains' addresses, or those the filter names (names or UUIDs; a filter also lists stopped and
   * unknown domains, with their error). Resolves by the deadline: a domain still silent then gets deadline_exceeded.
   * `novaMatches` (?project=, ?novaName=) keeps only the domains whose Nova metadata it accepts; the others, and
   * filter entries that name no domain, are not asked and not listed. `mayTouchNova` is the caller's own condition on
   * the metadata (a Keystone project): a domain it refuses is never asked, and looks like one that does not exist.
   */
  async collect(
    filter: string[] | null,
    timeoutMs: number,
    signal?: SignalSource,
    mayTouch: (dom: DomainRef) => boolean = () => true,
    novaMatches: ((nova: NovaInstance | null) => boolean) | null = null,
    mayTouchNova: ((nova: NovaInstance | null) => boolean) | null = null,
  ): Promise<{ entries: AddressEntry[]; failedHosts: { host: string; error: GatewayError }[] }> {
    const deadlineAt = Date.now() + timeoutMs;
    // Every host at once; one that cannot be listed is reported and the others answered.
    const { refs, failed } = await this.directory.listRefs(signal);
    const failedHosts = failed.map(({ host, error }) => ({ host, error }));
    // Domains the caller may not touch are never asked, and look just like ones that do not exist.
    const all = refs.filter(mayTouch);
    const named: Named[] = filter
      ? filter.flatMap((token): Named[] => {
          const found = findDomains(all, this.directory.splitId(token));
          return found.length ? found.map((target) => ({ target, token })) : [{ target: { missing: token }, token }];
        })
      : all.filter((d) => d.id >= 0).map((target) => ({ target, token: null }));
    let targets = named.map((n) => n.target);
    const someHostDown = failedHosts.length > 0;
    // The common poll, every result and every Nova metadata known: answered without a timer or a promise per domain.
    const cached = mayTouchNova ? null : this.fromCaches(targets, novaMatches, someHostDown);
    if (cached) return { entries: cached.sort(byNameThenHost), failedHosts };
    // No abort signal reaches the fetches: each has the deadline as its own, ends by itself, and may be
    // shared with a concurrent caller whose deadline is later; what it learns fills the cache.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>(
      (resolve) => (timer = setTimeout(() => resolve('deadline'), Math.max(0, deadlineAt - Date.now()))),
    );
    try {
      if (mayTouchNova) targets = await this.withoutUntouchable(named, mayTouchNova, deadline, signal);
      // With a Nova filter, the metadata decides whom to ask; without one, it is read beside the fan-out.
      const novaReads = this.novaOf(targets, deadline, signal);
      let asked = targets.map((_, i) => i);
      if (novaMatches) {
        const novas = await novaReads;
        asked = asked.filter((i) => novaMatches(novas[i]!));
      }
      const [entries, novas] = await Promise.all([
        Promise.all(asked.map((i) => this.entryFor(targets[i]!, deadlineAt, deadline, timeoutMs, someHostDown))),
        novaReads,
      ]);
      const withNova = entries.map((entry, k): AddressEntry => {
        const nova = novas[asked[k]!];
        return nova ? { ...entry, nova } : entry;
      });
      return { entries: withNova.sort(byNameThenHost), failedHosts };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The targets whose Nova metadata the caller may touch; one it may not is dropped, or, when a filter named it, made
   * a filter entry that names no domain (once per name): the same answer as for a domain that does not exist.
   */
  private async withoutUntouchable(
    named: Named[],
    mayTouchNova: (nova: NovaInstance | null) => boolean,
    deadline: Promise<'deadline'>,
    signal?: SignalSource,
  ): Promise<(DomainRef | { missing: string })[]> {
    const novas = await this.novaOf(
      named.map((n) => n.target),
      deadline,
      signal,
    );
    const kept: (DomainRef | { missing: string })[] = [];
    const missing = new Set<string>();
    for (const [i, { target, token }] of named.entries()) {
      if ('missing' in target) missing.add(target.missing);
      else if (mayTouchNova(novas[i]!)) kept.push(target);
      else if (token !== null) missing.add(token);
    }
    // A name also found (and touchable) on another host is not missing.
    for (const t of kept) for (const token of missing) if (named.some((n) => n.target === t && n.token === token)) missing.delete(token);
    return [...kept, ...[...missing].map((m) => ({ missing: m }))];
  }

  /**
   * Each target's Nova metadata (null for none, and for a filter entry that names no domain): kept per domain by the
   * directory, so read from libvirt once per definition, and given up at the deadline. A domain whose XML cannot be
   * read in time counts as having none: its entry then says what is wrong with it, from its agent call.
   */
  private novaOf(
    targets: (DomainRef | { missing: string })[],
    deadline: Promise<'deadline'>,
    signal?: SignalSource,
  ): Promise<(NovaInstance | null)[]> {
    const late = deadline.then(() => null);
    return Promise.all(
      targets.map((t) => ('missing' in t ? null : Promise.race([this.directory.nova(t, signal).catch(() => null), late]))),
    );
  }

  private async entryFor(
    target: DomainRef | { missing: string },
    deadlineAt: number,
    deadline: Promise<'deadline'>,
    timeoutMs: number,
    someHostDown: boolean,
  ): Promise<AddressEntry> {
    const known = this.knownEntry(target, someHostDown);
    if (known) return known;
    const dom = target as DomainRef;
    const fetched = await Promise.race([this.fetch(dom, deadlineAt), deadline]);
    if (fetched === 'deadline') {
      const why = this.asking.has(domainKey(dom))
        ? `the guest agent did not answer within the ${timeoutMs} ms deadline`
        : `the domain was still waiting for its turn in the fan-out (addresses.concurrency) at the ${timeoutMs} ms deadline`;
      const error = new GatewayError('deadline_exceeded', why, { domain: dom.name, command: guestNetworkGetInterfaces.execute });
      return { host: dom.host, name: dom.name, uuid: dom.uuid, result: { ok: false, error }, fetchedAt: new Date(), cached: false };
    }
    return { host: dom.host, name: dom.name, uuid: dom.uuid, result: fetched.result, fetchedAt: fetched.fetchedAt, cached: false };
  }

  /** Every target's entry from what is kept (results and Nova metadata), or null when any must be asked or read. */
  private fromCaches(
    targets: (DomainRef | { missing: string })[],
    novaMatches: ((nova: NovaInstance | null) => boolean) | null,
    someHostDown: boolean,
  ): AddressEntry[] | null {
    const entries: AddressEntry[] = [];
    for (const target of targets) {
      const nova = 'missing' in target ? null : this.directory.knownNova(target);
      if (nova === undefined) return null;
      if (novaMatches && !novaMatches(nova)) continue;
      const entry = this.knownEntry(target, someHostDown, nova);
      if (!entry) return null;
      entries.push(entry);
    }
    return entries;
  }

  /**
   * The entry of a target that needs no agent call: a name that names no domain, a domain not running, a cached result
   * (the same entry object from call to call while its result, name and `nova` stay: see CacheEntry.answered).
   */
  private knownEntry(
    target: DomainRef | { missing: string },
    someHostDown: boolean,
    nova: NovaInstance | null = null,
  ): AddressEntry | null {
    if ('missing' in target) {
      // Not found while a host could not be listed: it may be on that host.
      const error = someHostDown
        ? new GatewayError(
            'host_unavailable',
            `no domain named or with UUID '${target.missing}' on the reachable hosts; some hosts are not reachable`,
            { domain: target.missing },
          )
        : new GatewayError('domain_not_found', `no domain named or with UUID '${target.missing}'`, { domain: target.missing });
      return { host: null, name: target.missing, uuid: null, result: { ok: false, error }, fetchedAt: new Date(), cached: false };
    }
    const dom = target;
    if (dom.id < 0) {
      const error = new GatewayError('domain_not_running', `domain ${dom.name} is not running`, { domain: dom.name });
      const entry: AddressEntry = {
        host: dom.host,
        name: dom.name,
        uuid: dom.uuid,
        result: { ok: false, error },
        fetchedAt: new Date(),
        cached: false,
      };
      if (nova) entry.nova = nova;
      return entry;
    }
    const hit = this.cache.get(domainKey(dom));
    return hit && hit.expires > Date.now() ? answeredFrom(hit, dom, nova) : null;
  }

  private fetch(dom: DomainRef, deadlineAt: number): Promise<CacheEntry> {
    const key = domainKey(dom);
    const pending = this.inFlight.get(key);
    if (pending) {
      pending.deadlineAt = Math.max(pending.deadlineAt, deadlineAt);
      return pending.entry;
    }
    const shared = { entry: null as unknown as Promise<CacheEntry>, deadlineAt };
    const run = this.slots.run(async (): Promise<CacheEntry> => {
      this.asking.add(key);
      let result: AddressResult;
      const timeoutMs = shared.deadlineAt - Date.now();
      if (timeoutMs <= 0) {
        // Its turn came after the deadline (the caller has answered without it): not sent at all.
        const error = new GatewayError('deadline_exceeded', 'the deadline passed while the domain waited for its turn in the fan-out', {
          domain: dom.name,
          command: guestNetworkGetInterfaces.execute,
        });
        return { result: { ok: false, error }, fetchedAt: new Date(), expires: 0 };
      }
      try {
        result = { ok: true, interfaces: await this.agent.execute(dom, guestNetworkGetInterfaces, undefined, { timeoutMs }) };
      } catch (err) {
        result = { ok: false, error: backendError(err, { domain: dom.name }) };
      }
      const entry: CacheEntry = { result, fetchedAt: new Date(), expires: Date.now() + this.config.cacheTtlMs };
      if (this.config.cacheTtlMs > 0 && (result.ok || STABLE_ERRORS.has(result.error.code))) this.cache.set(key, entry);
      return entry;
    }, this.config.slotHoldMs);
    shared.entry = run;
    this.inFlight.set(key, shared);
    void run.finally(() => {
      this.inFlight.delete(key);
      this.asking.delete(key);
    });
    return run;
  }
}

/** The domains a filter token names: name or UUID, optionally qualified as host:name; on every host that has it. */
function findDomains(all: DomainRef[], { host, rest: id }: { host: string | undefined; rest: string }): DomainRef[] {
  const onHost = host ? all.filter((d) => d.host === host) : all;
  if (isUuid(id)) {
    const wanted = id.toLowerCase().replace(/-/g, '');
    const byUuid = onHost.filter((d) => d.uuid.replace(/-/g, '') === wanted);
    if (byUuid.length) return byUuid;
  }
  return onHost.filter((d) => d.name === id);
}

/** The cached entry of a running domain, the same object as last time unless its name or Nova metadata changed. */
function answeredFrom(hit: CacheEntry, dom: DomainRef, nova: NovaInstance | null): AddressEntry {
  const kept = hit.answered;
  if (kept && kept.name === dom.name && kept.host === dom.host && kept.uuid === dom.uuid && (kept.nova ?? null) === nova) return kept;
  const entry: AddressEntry = {
    host: dom.host,
    name: dom.name,
    uuid: dom.uuid,
    result: hit.result,
    fetchedAt: hit.fetchedAt,
    cached: true,
  };
  if (nova) entry.nova = nova;
  hit.answered = entry;
  return entry;
}
