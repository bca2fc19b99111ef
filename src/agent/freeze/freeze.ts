// src/agent/freeze: file-system freeze, thaw and trim (guest-fsfreeze-*, guest-fstrim). Every freeze the gateway
// sends carries a deadline: when it passes the gateway thaws on its own, client or no client; the gateway's
// shutdown thaws every domain it froze; a domain that stops or starts is no longer frozen. freeze-registry.ts holds
// the freezes (and refuses commands a frozen agent would not run), freeze-journal.ts records them on disk so that a
// gateway that died holding one thaws it when it starts again.
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import type { LibvirtHosts } from '../../libvirt/hosts.js';
import { LifecycleEvent } from '../../libvirt/protocol.js';
import type { ExactInteger } from '../transports/agent-json.js';
import { guestFsfreezeFreeze, guestFsfreezeFreezeList, guestFsfreezeStatus, guestFsfreezeThaw, guestFstrim } from '../commands/fs.js';
import { recoveryVerdict, toFreezeRecord, type FreezeRecord } from './freeze-journal.js';
import type { FreezeRegistry, HeldFreeze } from './freeze-registry.js';
import type { StateJournal } from '../../state/journal.js';
import type { AgentCallOptions, AgentService } from '../core/service.js';
import { domainKey, type DomainRef } from '../../domains/vocabulary.js';

/** Freeze outcomes that prove nothing was frozen: the gateway need not thaw later. */
const DEFINITE_FAILURES = new Set([
  'agent_error',
  'command_not_supported',
  'domain_not_running',
  'agent_not_configured',
  'agent_not_connected',
  'invalid_request',
  'agent_queue_full',
  'shutting_down',
  'domain_not_found',
]);

/** A deadline thaw that fails is retried soon a few times, then every 30 s for as long as the freeze is held. */
const DEADLINE_THAW_QUICK_ATTEMPTS = 5;
const DEADLINE_THAW_RETRY_MS = 2_000;
const DEADLINE_THAW_SLOW_RETRY_MS = 30_000;
/** Outcomes of a thaw that prove the domain has no freeze left: the domain is gone or not running. */
const FREEZE_GONE = new Set(['domain_not_found', 'domain_not_running']);

export interface FreezeStatus {
  status: string;
  held: HeldFreeze | undefined;
}

export interface TrimResult {
  path: string;
  trimmedBytes: ExactInteger | null;
  minimumBytes: ExactInteger | null;
  error: string | null;
}

export class FreezeService {
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private closing = false;
  /** Domains with a previous run's record not yet taken back: a new freeze there waits (409) until it is. */
  private readonly recovering = new Set<string>();

  /** registry must have been built to call forgetRecord() on release. */
  constructor(
    private readonly agent: AgentService,
    readonly registry: FreezeRegistry,
    private readonly journal: StateJournal<FreezeRecord>,
    private readonly config: Config['freeze'],
    hosts: LibvirtHosts,
    private readonly log: Logger,
  ) {
    hosts.on('lifecycle', ({ key, host, dom, event }) => {
      if (event !== LifecycleEvent.STOPPED && event !== LifecycleEvent.STARTED && event !== LifecycleEvent.CRASHED) return;
      if (!registry.get(key)) return;
      this.log.info({ host, domain: dom.name, event }, 'domain stopped or started: its freeze is gone');
      registry.release(key);
    });
  }

  get defaultTimeoutMs(): number {
    return this.config.defaultTimeoutMs;
  }

  async status(dom: DomainRef, opts: AgentCallOptions): Promise<FreezeStatus> {
    const status = await this.agent.execute(dom, guestFsfreezeStatus, undefined, opts);
    return { status, held: this.registry.get(domainKey(dom)) };
  }

  /** Freezes all (mountpoints null) or the listed file systems, thawing by itself after thawAfterMs. */
  async freeze(
    dom: DomainRef,
    mountpoints: string[] | null,
    thawAfterMs: number,
    opts: AgentCallOptions,
  ): Promise<FreezeStatus & { count: number }> {
    if (thawAfterMs > this.config.maxTimeoutMs) {
      throw new GatewayError(
        'invalid_request',
        `thawAfterMs ${thawAfterMs} is above the configured maximum of ${this.config.maxTimeoutMs} ms`,
        { domain: dom.name },
      );
    }
    if (this.recovering.has(domainKey(dom))) {
      throw new GatewayError(
        'state_conflict',
        `the gateway is taking back a freeze of ${dom.name} it held before it restarted: try again in a few seconds`,
        { domain: dom.name, command: guestFsfreezeFreeze.execute, retryAfter: 2 },
      );
    }
    // Held before sending: a freeze whose reply is lost (deadline) may have happened and must still be thawed.
    const held = this.registry.hold(dom, thawAfterMs, mountpoints);
    // And recorded durably before sending, so that a gateway that dies now still thaws it when it starts again.
    try {
      await this.journal.put(toFreezeRecord(held));
    } catch (err) {
      this.registry.release(domainKey(dom), false);
      this.log.error({ domain: dom.name, err: (err as Error).message }, 'freeze refused: its record could not be written');
      throw err instanceof GatewayError
        ? new GatewayError(err.code, `not frozen: ${err.message}`, { domain: dom.name, command: guestFsfreezeFreeze.execute })
        : err;
    }
    // The deadline runs from the hold, but is armed only now (freeze-registry.ts says why).
    // Released meanwhile (the domain stopped or restarted): the release dropped the record already.
    if (!this.registry.arm(held, (d) => this.thawOnDeadline(d, 1))) {
      throw new GatewayError('state_conflict', `${dom.name} stopped or restarted before its freeze was sent: not frozen`, {
        domain: dom.name,
        command: guestFsfreezeFreeze.execute,
      });
    }
    let count: number;
    try {
      const sending = mountpoints
        ? this.agent.execute(dom, guestFsfreezeFreezeList, { mountpoints }, opts)
        : this.agent.execute(dom, guestFsfreezeFreeze, undefined, opts);
      held.sending = sending.catch(() => {});
      count = await sending;
    } catch (err) {
      // qemu-ga thaws by itself when a freeze fails part way, so a definite failure leaves nothing frozen.
      if (err instanceof GatewayError && (DEFINITE_FAILURES.has(err.code) || /waiting in the queue/.test(err.message)))
        this.registry.release(domainKey(dom));
      // Otherwise the answer was lost, not the freeze: assume frozen (409 for other commands) until the deadline thaw.
      else this.registry.setFrozen(domainKey(dom), true);
      throw err;
    }
    let status = 'frozen';
    try {
      status = await this.agent.execute(dom, guestFsfreezeStatus, undefined, opts);
    } catch (err) {
      this.log.warn({ domain: dom.name, err: (err as Error).message }, 'guest-fsfreeze-status after a freeze failed; assuming frozen');
    }
    // A guest without freezable file systems (an initramfs root) answers 0 and stays thawed: let commands pass.
    this.registry.setFrozen(domainKey(dom), status === 'frozen');
    this.log.info({ domain: dom.name, count, status, thawAfterMs }, 'file systems frozen');
    return { count, status, held: this.registry.get(domainKey(dom)) };
  }

  /** Thaws, whoever froze; forgets the gateway's freeze of the domain. */
  async thaw(dom: DomainRef, opts: AgentCallOptions): Promise<number> {
    const count = await this.agent.execute(dom, guestFsfreezeThaw, undefined, opts);
    this.registry.release(domainKey(dom));
    this.log.info({ domain: dom.name, count }, 'file systems thawed');
    return count;
  }

  /** Drops a freeze's durable record once the freeze is over (the registry calls this on every release). */
  forgetRecord(key: string): void {
    this.journal.remove(key).catch((err: unknown) => {
      this.log.error(
        { key, err: (err as Error).message },
        'a thawed freeze is still in the journal: the next start will look at its domain again',
      );
    });
  }

  /**
   * The deadline passed: thaw. A failure is retried (the agent may be busy or reconnecting, libvirt restarting)
   * for as long as the freeze is held: a guest left frozen blocks its writers, so the gateway never gives up
   * while the domain runs. A domain gone or stopped has nothing left to thaw.
   */
  private thawOnDeadline(dom: DomainRef, attempt: number): void {
    const held = this.registry.get(domainKey(dom));
    if (this.closing || !held) return;
    // A deadline shorter than the freeze's own round trip: thaw after the freeze, never before it.
    void (held.sending ?? Promise.resolve()).then(() => this.deadlineThaw(dom, attempt));
  }

  private deadlineThaw(dom: DomainRef, attempt: number): void {
    if (this.closing || !this.registry.get(domainKey(dom))) return;
    this.thaw(dom, { timeoutMs: 10_000 }).then(
      (count) => this.log.info({ domain: dom.name, count, attempt }, 'freeze deadline passed: thawed'),
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof GatewayError && FREEZE_GONE.has(err.code)) {
          this.log.warn(
            { domain: dom.name, attempt, err: message },
            'freeze deadline passed: the domain is gone or stopped, so is its freeze',
          );
          this.registry.release(domainKey(dom));
          return;
        }
        const delay = attempt < DEADLINE_THAW_QUICK_ATTEMPTS ? DEADLINE_THAW_RETRY_MS : DEADLINE_THAW_SLOW_RETRY_MS;
        this.log.error({ domain: dom.name, attempt, retryInMs: delay, err: message }, 'freeze deadline passed: thaw failed; retrying');
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer);
          this.thawOnDeadline(dom, attempt + 1);
        }, delay);
        this.retryTimers.add(timer);
      },
    );
  }

  /** At start-up, before the gateway serves: the freezes a previous run recorded (unreadable ones set aside and logged). */
  async readRecords(): Promise<FreezeRecord[]> {
    const { entries, corrupt } = await this.journal.read().catch((err: unknown) => {
      this.log.error(
        { dir: this.journal.dir, err: (err as Error).message },
        'freeze journal unreadable: freezes an earlier run held cannot be thawed by this one',
      );
      return { entries: [], corrupt: [] };
    });
    for (const c of corrupt) {
      this.log.error(
        { file: c.file, keptAs: c.keptAs, reason: c.reason },
        'freeze journal: unreadable record set aside; the freeze it named (if any) is not thawed by the gateway: check the guests by hand',
      );
    }
    for (const { entry } of entries) this.recovering.add(entry.id);
    return entries.map((e) => e.entry);
  }

  /**
   * Takes back the freezes a previous run recorded. Each domain is looked up by host and UUID (again every few
   * seconds while its host does not answer); one that is gone, stopped or restarted since, or whose agent says
   * it is thawed already (by hand, say), is dropped with a log line; otherwise the freeze is held again and
   * thawed at its deadline, or at once when it passed while the gateway was down. Resolves when every record
   * has been looked at.
   */
  async recover(
    records: FreezeRecord[],
    lookup: (host: string, uuid: string) => Promise<DomainRef>,
    retryMs = DEADLINE_THAW_RETRY_MS,
  ): Promise<void> {
    await Promise.all(records.map((record) => this.recoverOne(record, lookup, retryMs).finally(() => this.recovering.delete(record.id))));
  }

  private async recoverOne(
    record: FreezeRecord,
    lookup: (host: string, uuid: string) => Promise<DomainRef>,
    retryMs: number,
  ): Promise<void> {
    const where = { host: record.host, domain: record.name, uuid: record.uuid, thawAt: record.thawAt };
    for (let attempt = 1; !this.closing; attempt++) {
      const verdict = recoveryVerdict(
        record,
        await lookup(record.host, record.uuid).then(
          (dom) => ({ dom }),
          (error: unknown) => ({ error }),
        ),
      );
      if (verdict.action === 'drop') {
        this.log.warn({ ...where, why: verdict.why }, 'freeze journal: record dropped');
        this.forgetRecord(record.id);
        return;
      }
      if (verdict.action === 'hold') {
        const dom = verdict.dom;
        // Not knowing (the agent not answering yet) holds it: a frozen guest would refuse other commands anyway.
        const status = await this.agent.execute(dom, guestFsfreezeStatus, undefined, { timeoutMs: 10_000 }).catch(() => 'unknown');
        if (status === 'thawed') {
          this.log.warn(
            { ...where, domain: dom.name },
            'freeze journal: the guest is thawed already (by hand, or by a restart of its agent); record dropped',
          );
          this.forgetRecord(record.id);
          return;
        }
        this.registry.restore(
          { dom, mountpoints: record.mountpoints, frozenAt: new Date(record.frozenAt), thawAt: new Date(record.thawAt) },
          (d) => this.thawOnDeadline(d, 1),
        );
        this.log.info(
          { ...where, domain: dom.name, overdue: verdict.overdue },
          verdict.overdue
            ? 'freeze journal: deadline passed while the gateway was down; thawing now'
            : 'freeze journal: freeze held again until its deadline',
        );
        return;
      }
      if (attempt === 1)
        this.log.warn({ ...where, err: verdict.why }, 'freeze journal: domain not reachable yet; asking again until it is');
      await this.pause(retryMs);
    }
  }

  /** A wait that shutdown cancels (thawAll clears it; the waiter is then never resumed). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        resolve();
      }, ms);
      this.retryTimers.add(timer);
    });
  }

  /** At shutdown: thaws every domain the gateway froze, each under timeoutMs. */
  async thawAll(timeoutMs: number): Promise<void> {
    this.closing = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    await Promise.allSettled(
      this.registry.all().map(async ({ dom }) => {
        try {
          const count = await this.thaw(dom, { timeoutMs });
          this.log.info({ domain: dom.name, count }, 'shutting down: thawed');
        } catch (err) {
          this.log.error(
            { domain: dom.name, err: (err as Error).message },
            'shutting down: thaw failed; its record stays in the journal for the next start',
          );
        }
      }),
    );
    this.registry.close();
    await this.journal.settled();
  }

  async fstrim(dom: DomainRef, minimumBytes: number | undefined, opts: AgentCallOptions): Promise<TrimResult[]> {
    const reply = await this.agent.execute(dom, guestFstrim, minimumBytes === undefined ? undefined : { minimum: minimumBytes }, opts);
    return reply.paths.map((p) => ({
      path: p.path,
      trimmedBytes: p.trimmed ?? null,
      minimumBytes: p.minimum ?? null,
      error: p.error ?? null,
    }));
  }
}
