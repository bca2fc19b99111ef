// File-system freeze, thaw and trim (guest-fsfreeze-*, guest-fstrim). Every freeze the gateway sends carries
// a deadline: when it passes the gateway thaws on its own, client or no client; the gateway's shutdown thaws
// every domain it froze; a domain that stops or starts is no longer frozen.
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { DomainRef } from '../libvirt/client.js';
import { domainKey, type LibvirtHosts } from '../libvirt/hosts.js';
import { LifecycleEvent } from '../libvirt/protocol.js';
import { command, noArgs } from './commands.js';
import type { FreezeRegistry, HeldFreeze } from './freeze-registry.js';
import type { AgentCallOptions, AgentService } from './service.js';

// qga/qapi-schema.json: GuestFsfreezeStatus is 'thawed' | 'frozen'; freeze and thaw answer a count.
export const guestFsfreezeStatus = command('guest-fsfreeze-status', 'quick', noArgs, z.string());
export const guestFsfreezeFreeze = command('guest-fsfreeze-freeze', 'slow', noArgs, z.number().int());
export const guestFsfreezeFreezeList = command('guest-fsfreeze-freeze-list', 'slow', z.object({ mountpoints: z.array(z.string()).optional() }), z.number().int());
export const guestFsfreezeThaw = command('guest-fsfreeze-thaw', 'slow', noArgs, z.number().int());
export const guestFstrim = command(
  'guest-fstrim',
  'slow',
  z.object({ minimum: z.number().int().min(0).optional() }).optional(),
  z.looseObject({
    paths: z.array(
      z.looseObject({ path: z.string(), trimmed: z.number().int().optional(), minimum: z.number().int().optional(), error: z.string().optional() }),
    ),
  }),
);

/** Freeze outcomes that prove nothing was frozen: the gateway need not thaw later. */
const DEFINITE_FAILURES = new Set(['agent_error', 'command_not_supported', 'domain_not_running', 'agent_not_configured', 'agent_not_connected', 'invalid_request', 'agent_queue_full', 'shutting_down', 'domain_not_found']);

const DEADLINE_THAW_ATTEMPTS = 5;
const DEADLINE_THAW_RETRY_MS = 2_000;

export interface FreezeStatus {
  status: string;
  held: HeldFreeze | undefined;
}

export interface TrimResult {
  path: string;
  trimmedBytes: number | null;
  minimumBytes: number | null;
  error: string | null;
}

export class FreezeService {
  private readonly retryTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly agent: AgentService,
    readonly registry: FreezeRegistry,
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
  async freeze(dom: DomainRef, mountpoints: string[] | null, thawAfterMs: number, opts: AgentCallOptions): Promise<FreezeStatus & { count: number }> {
    if (thawAfterMs > this.config.maxTimeoutMs) {
      throw new GatewayError('invalid_request', `thawAfterMs ${thawAfterMs} is above the configured maximum of ${this.config.maxTimeoutMs} ms`, { domain: dom.name });
    }
    // Held before sending: a freeze whose reply is lost (deadline) may have happened and must still be thawed.
    this.registry.hold(dom, thawAfterMs, mountpoints, (d) => this.thawOnDeadline(d, 1));
    let count: number;
    try {
      count = mountpoints
        ? await this.agent.execute(dom, guestFsfreezeFreezeList, { mountpoints }, opts)
        : await this.agent.execute(dom, guestFsfreezeFreeze, undefined, opts);
    } catch (err) {
      // qemu-ga thaws by itself when a freeze fails part way, so a definite failure leaves nothing frozen.
      if (err instanceof GatewayError && (DEFINITE_FAILURES.has(err.code) || /waiting in the queue/.test(err.message))) this.registry.release(domainKey(dom));
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

  /** The deadline passed: thaw, retrying a few times (the agent may be busy or reconnecting). */
  private thawOnDeadline(dom: DomainRef, attempt: number): void {
    this.thaw(dom, { timeoutMs: 10_000 }).then(
      (count) => this.log.info({ domain: dom.name, count, attempt }, 'freeze deadline passed: thawed'),
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        if (attempt >= DEADLINE_THAW_ATTEMPTS || (err instanceof GatewayError && err.code === 'domain_not_found')) {
          this.log.error({ domain: dom.name, attempt, err: message }, 'freeze deadline passed: thaw failed; giving up');
          this.registry.release(domainKey(dom));
          return;
        }
        this.log.warn({ domain: dom.name, attempt, err: message }, 'freeze deadline passed: thaw failed; retrying');
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer);
          this.thawOnDeadline(dom, attempt + 1);
        }, DEADLINE_THAW_RETRY_MS);
        this.retryTimers.add(timer);
      },
    );
  }

  /** At shutdown: thaws every domain the gateway froze, each under timeoutMs. */
  async thawAll(timeoutMs: number): Promise<void> {
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    await Promise.allSettled(
      this.registry.all().map(async ({ dom }) => {
        try {
          const count = await this.thaw(dom, { timeoutMs });
          this.log.info({ domain: dom.name, count }, 'shutting down: thawed');
        } catch (err) {
          this.log.error({ domain: dom.name, err: (err as Error).message }, 'shutting down: thaw failed');
          this.registry.release(domainKey(dom));
        }
      }),
    );
  }

  async fstrim(dom: DomainRef, minimumBytes: number | undefined, opts: AgentCallOptions): Promise<TrimResult[]> {
    const reply = await this.agent.execute(dom, guestFstrim, minimumBytes === undefined ? undefined : { minimum: minimumBytes }, opts);
    return reply.paths.map((p) => ({ path: p.path, trimmedBytes: p.trimmed ?? null, minimumBytes: p.minimum ?? null, error: p.error ?? null }));
  }
}
