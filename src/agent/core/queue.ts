// One task at a time per key (a domain), first in first out, with a bounded number waiting.
// libvirt itself serialises agent commands per domain and makes a second caller wait up to 30 s for
// its lock (error 68); queuing here gives callers a clean deadline and a clean "queue full" instead.

export class QueueFullError extends Error {
  override name = 'QueueFullError';
  constructor(readonly waiting: number) {
    super(`${waiting} commands are already waiting for this domain`);
  }
}

export class QueueClosedError extends Error {
  override name = 'QueueClosedError';
  constructor() {
    super('the gateway is shutting down');
  }
}

interface Waiter {
  start(): void;
}

interface Lane {
  running: boolean;
  waiting: Waiter[];
}

export interface QueueOptions {
  /** Tasks that may wait behind the running one. */
  maxWaiting: number;
  /**
   * After a caller gives up on a running task, the slot stays held until the task settles, at most this
   * long: the guest agent is still busy with it, and the next command would only wait inside libvirt.
   */
  abandonGraceMs: number;
}

export class KeyedSerialQueue {
  private readonly lanes = new Map<string, Lane>();
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: QueueOptions) {}

  /** Running plus waiting tasks for one key. */
  depth(key: string): number {
    const lane = this.lanes.get(key);
    return lane ? lane.waiting.length + (lane.running ? 1 : 0) : 0;
  }

  /** Running plus waiting tasks over all keys. */
  get totalDepth(): number {
    let n = 0;
    for (const key of this.lanes.keys()) n += this.depth(key);
    return n;
  }

  /**
   * Runs task when every earlier task for key has finished. The returned promise settles with the task,
   * or rejects with signal.reason as soon as the signal aborts (waiting or running).
   */
  run<T>(key: string, task: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(new QueueClosedError());
    if (signal.aborted) return Promise.reject(signal.reason);
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { running: false, waiting: [] };
      this.lanes.set(key, lane);
    }
    if (lane.running && lane.waiting.length >= this.opts.maxWaiting) {
      return Promise.reject(new QueueFullError(lane.waiting.length));
    }
    const theLane = lane;

    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          signal.removeEventListener('abort', onAbortWhileWaiting);
          theLane.running = true;
          let released = false;
          let graceTimer: NodeJS.Timeout | undefined;
          const release = () => {
            if (released) return;
            released = true;
            clearTimeout(graceTimer);
            signal.removeEventListener('abort', onAbortWhileRunning);
            this.next(key, theLane);
          };
          const onAbortWhileRunning = () => {
            reject(signal.reason);
            graceTimer = setTimeout(release, this.opts.abandonGraceMs);
          };
          if (signal.aborted) {
            onAbortWhileRunning();
          } else {
            signal.addEventListener('abort', onAbortWhileRunning, { once: true });
          }
          let promise: Promise<T>;
          try {
            promise = task();
          } catch (err) {
            promise = Promise.reject(err);
          }
          // The slot is freed before the caller hears back, so that depth() is already right for it.
          promise.then(
            (value) => {
              release();
              resolve(value);
            },
            (err: unknown) => {
              release();
              reject(err);
            },
          );
        },
      };
      const onAbortWhileWaiting = () => {
        const i = theLane.waiting.indexOf(waiter);
        if (i >= 0) theLane.waiting.splice(i, 1);
        this.dropIfEmpty(key, theLane);
        reject(signal.reason);
      };
      if (theLane.running) {
        signal.addEventListener('abort', onAbortWhileWaiting, { once: true });
        theLane.waiting.push(waiter);
      } else {
        waiter.start();
      }
    });
  }

  private next(key: string, lane: Lane): void {
    lane.running = false;
    const waiter = lane.waiting.shift();
    if (waiter) {
      waiter.start();
      return;
    }
    this.dropIfEmpty(key, lane);
  }

  private dropIfEmpty(key: string, lane: Lane): void {
    if (lane.running || lane.waiting.length) return;
    if (this.lanes.get(key) === lane) this.lanes.delete(key);
    if (this.lanes.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Refuses new tasks from now on; resolves when every task has finished, or after timeoutMs. */
  async close(timeoutMs: number): Promise<boolean> {
    this.closed = true;
    if (this.lanes.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([idle, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
