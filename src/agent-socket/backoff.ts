// Reconnection backoff for an agent socket: after the n-th failed connect in a row, no new attempt for
// 250 ms * 2^(n-1), capped at 10 s, jittered to between half and all of that step so that many channels whose
// sockets vanished together (a hypervisor restart) do not retry in lockstep. Timestamps only: no timer runs.

export const BACKOFF_FIRST_MS = 250;
export const BACKOFF_MAX_MS = 10_000;

/** The pause after `failures` (>= 1) failed attempts in a row; random() in [0, 1). */
export function backoffDelayMs(failures: number, random: () => number = Math.random): number {
  const step = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return Math.round(step / 2 + (random() * step) / 2);
}

export class Backoff {
  private failures = 0;
  private notBefore = 0;
  private lastError = '';

  constructor(private readonly now: () => number = Date.now) {}

  /** Milliseconds until the next attempt is allowed; 0 when it may be made now. */
  remainingMs(): number {
    return Math.max(0, this.notBefore - this.now());
  }

  /** Failures since the last success: the state the delay grows from, observable for the tests (the channel logs the delay). */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** The reason of the last failure, for the message of calls refused during the pause. */
  get lastFailure(): string {
    return this.lastError;
  }

  failed(reason: string): number {
    this.failures += 1;
    this.lastError = reason;
    const delay = backoffDelayMs(this.failures);
    this.notBefore = this.now() + delay;
    return delay;
  }

  succeeded(): void {
    this.failures = 0;
    this.notBefore = 0;
    this.lastError = '';
  }
}
