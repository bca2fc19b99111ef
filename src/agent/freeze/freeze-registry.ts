// The freezes the gateway holds: one per domain, each with a deadline timer that thaws on its own even when
// the client that froze has gone. Also the guard that refuses commands a frozen agent would not run.
import { GatewayError } from '../../errors.js';
import { commandFacts } from '../commands/index.js';
import { guestFsfreezeFreeze, guestFsfreezeThaw } from '../commands/fs.js';
import type { CommandGuard } from '../core/service.js';
import { domainKey, type DomainRef } from '../../domains/vocabulary.js';

export interface HeldFreeze {
  dom: DomainRef;
  /** null: every freezable file system. */
  mountpoints: string[] | null;
  frozenAt: Date;
  thawAt: Date;
  /** Whether the agent says it is frozen (false when nothing freezable was found: commands still pass). */
  frozen: boolean;
  /** The deadline; undefined until armed. */
  timer: NodeJS.Timeout | undefined;
  /** The freeze command in flight: the deadline thaw waits for it, or the thaw could overtake the freeze. */
  sending?: Promise<unknown>;
}

export class FreezeRegistry implements CommandGuard {
  private readonly held = new Map<string, HeldFreeze>();

  /** onRelease: told of every freeze forgotten, whoever ended it (the journal drops its record). */
  constructor(private readonly onRelease: (key: string) => void = () => {}) {}

  /** key: domainKey() of the domain. */
  get(key: string): HeldFreeze | undefined {
    return this.held.get(key);
  }

  all(): HeldFreeze[] {
    return [...this.held.values()];
  }

  /** Domains the agent says are frozen now under the gateway's hold (the metrics' freezes_in_force). */
  get frozenCount(): number {
    let n = 0;
    for (const entry of this.held.values()) if (entry.frozen) n++;
    return n;
  }

  /**
   * Records a freeze about to be sent; 409 when the gateway already holds one. Its deadline is armed by arm(),
   * once the freeze's durable record is written: a deadline passing before that would thaw first and leave the
   * freeze sent after it with no deadline at all.
   */
  hold(dom: DomainRef, timeoutMs: number, mountpoints: string[] | null): HeldFreeze {
    this.refuseSecond(dom);
    const now = Date.now();
    const held: HeldFreeze = {
      dom,
      mountpoints,
      frozenAt: new Date(now),
      thawAt: new Date(now + timeoutMs),
      frozen: false,
      timer: undefined,
    };
    this.held.set(domainKey(dom), held);
    return held;
  }

  /** Arms the deadline of a hold (at once when it has passed); false when the hold has ended meanwhile. */
  arm(held: HeldFreeze, onDeadline: (dom: DomainRef) => void): boolean {
    if (this.held.get(domainKey(held.dom)) !== held) return false;
    held.timer = setTimeout(() => onDeadline(held.dom), Math.max(0, held.thawAt.getTime() - Date.now()));
    return true;
  }

  /**
   * A freeze a previous run of the gateway took (its journal): held as frozen, since the guest may well be,
   * with its deadline armed again (at once when it has passed).
   */
  restore(entry: Omit<HeldFreeze, 'timer' | 'frozen'>, onDeadline: (dom: DomainRef) => void): HeldFreeze {
    this.refuseSecond(entry.dom);
    return this.put({ ...entry, frozen: true }, onDeadline);
  }

  private put(entry: Omit<HeldFreeze, 'timer'>, onDeadline: (dom: DomainRef) => void): HeldFreeze {
    const held: HeldFreeze = { ...entry, timer: undefined };
    this.held.set(domainKey(entry.dom), held);
    this.arm(held, onDeadline);
    return held;
  }

  private refuseSecond(dom: DomainRef): void {
    const existing = this.held.get(domainKey(dom));
    if (existing) {
      throw new GatewayError(
        'state_conflict',
        `the gateway already holds ${dom.name}'s file systems frozen until ${existing.thawAt.toISOString()}; thaw first`,
        {
          domain: dom.name,
          command: guestFsfreezeFreeze.execute,
        },
      );
    }
  }

  setFrozen(key: string, frozen: boolean): void {
    const entry = this.held.get(key);
    if (entry) entry.frozen = frozen;
  }

  /** Forgets a freeze (thawed, or the domain stopped) and its timer; notify false: its record was never written. */
  release(key: string, notify = true): void {
    const entry = this.held.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.held.delete(key);
    if (notify) this.onRelease(key);
  }

  /** Shutdown: stops every deadline timer without releasing (a freeze still held stays in the journal for the next start). */
  close(): void {
    for (const entry of this.held.values()) clearTimeout(entry.timer);
    this.held.clear();
  }

  /** A thaw from anywhere (the raw command endpoint too) ends the gateway's hold on the domain. */
  succeeded(dom: DomainRef, execute: string): void {
    if (execute === guestFsfreezeThaw.execute) this.release(domainKey(dom));
  }

  /** 409 for a command the frozen agent would refuse, instead of its "has been disabled" error. */
  check(dom: DomainRef, execute: string): void {
    const entry = this.held.get(domainKey(dom));
    if (!entry?.frozen || commandFacts(execute)?.allowedWhileFrozen) return;
    throw new GatewayError(
      'state_conflict',
      `${dom.name}'s file systems are frozen by the gateway until ${entry.thawAt.toISOString()}: only guest-ping, guest-info, ` +
        `guest-fsfreeze-status and guest-fsfreeze-thaw run until then (DELETE /domains/${dom.name}/fsfreeze thaws)`,
      { domain: dom.name, command: execute },
    );
  }
}
