// One operation on an agent socket at a time, first come first served; a waiter whose signal aborts leaves
// the line without ever getting its turn.
export class Turns {
  private held = false;
  private readonly waiting: { grant(): void; refuse(err: unknown): void }[] = [];

  /** Resolves when it is the caller's turn; rejects with the signal's reason if it aborts first. */
  take(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        refuse: (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /** Passes the turn to the next in line, or frees it. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next.grant();
    else this.held = false;
  }

  /** Turns everyone waiting away with err (closing). */
  refuseAll(err: () => unknown): void {
    for (const w of this.waiting.splice(0)) w.refuse(err());
  }
}
