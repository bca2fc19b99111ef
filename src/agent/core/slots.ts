// At most `limit` tasks holding a slot at once over every caller, the others waiting their turn first come first
// served: how a fleet-wide fan-out (GET /addresses) is kept from putting every domain's command on the event loop, the
// agents' sockets and the host's CPU in the same instant, so that requests to other domains still get their share.
// A task may give its slot up before it ends (holdMs): a command that has not answered by then is waiting on a slow or
// hung agent, which costs the gateway nothing, and must not hold back the domains behind it.
export class Slots {
  private holding = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`slots: limit must be a positive integer, not ${limit}`);
  }

  /** Slots held now. */
  get active(): number {
    return this.holding;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs task once a slot is free, and settles as it settles. The slot goes to the next in line when the task settles,
   * however it settles, or after holdMs if the task is still running then.
   */
  async run<T>(task: () => Promise<T>, holdMs = Number.POSITIVE_INFINITY): Promise<T> {
    if (this.holding < this.limit) this.holding++;
    // The slot passes straight from the task that gives it up to this one: `holding` never drops in between.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      const next = this.waiting.shift();
      if (next) next();
      else this.holding--;
    };
    const timer = Number.isFinite(holdMs) ? setTimeout(release, holdMs) : undefined;
    try {
      return await task();
    } finally {
      release();
    }
  }
}
