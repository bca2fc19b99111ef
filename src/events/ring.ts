// The last events, for streams that resume (Last-Event-ID): a fixed array used as a circle, so that keeping the
// newest bufferSize events costs the same whatever the rate, and nothing older is kept.
export interface Sequenced {
  seq: number;
}

export class EventRing<T extends Sequenced> {
  private readonly slots: (T | undefined)[];
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.slots = new Array<T | undefined>(capacity);
  }

  /** Sequence numbers must increase by one from push to push: since() relies on it. */
  push(item: T): void {
    this.slots[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  get size(): number {
    return this.count;
  }

  /** The oldest event kept; undefined when empty. */
  get oldest(): T | undefined {
    return this.count === 0 ? undefined : this.slots[(this.next - this.count + this.capacity) % this.capacity];
  }

  /**
   * Every event after `seq`, oldest first; null when some of them are no longer kept (the caller must say it cannot
   * resume). `seq` must not be newer than the newest event pushed (the bus checks that).
   */
  since(seq: number): T[] | null {
    const oldest = this.oldest;
    if (!oldest) return [];
    if (seq < oldest.seq - 1) return null;
    const skip = Math.max(0, seq - oldest.seq + 1);
    const out: T[] = [];
    for (let i = skip; i < this.count; i++) out.push(this.slots[(this.next - this.count + i + this.capacity) % this.capacity]!);
    return out;
  }
}
