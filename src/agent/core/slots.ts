// At most `limit` tasks running at once over every caller, the others waiting their turn first come first served:
// how a fleet-wide fan-out (GET /addresses) is kept from putting every domain's command on the event loop, the
// agents' sockets and the host's CPU in the same instant, so that requests to other domains still get their share.
export class Slots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`slots: limit must be a positive integer, not ${limit}`);
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Runs task once a slot is free; the slot is given to the next in line when it settles, however it settles. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) this.running++;
    // The slot passes straight from the task that ends to this one: `running` never drops in between.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
