// Slots: at most `limit` tasks holding a slot at once over every caller, the rest first come first served, a slot freed
// however a task ends, or after its holdMs (the bound of the GET /addresses fan-out, src/agent/guest/addresses.ts).
import { describe, expect, it } from 'vitest';
import { Slots } from '../../src/agent/core/slots.js';

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const ticks = () => new Promise((r) => setImmediate(r));

describe('Slots', () => {
  it('runs at most limit tasks at once, the others in the order they came', async () => {
    const slots = new Slots(2);
    const gates = Array.from({ length: 5 }, () => deferred());
    const started: number[] = [];
    const done = gates.map((g, i) =>
      slots.run(async () => {
        started.push(i);
        await g.promise;
        return i;
      }),
    );
    await ticks();
    expect(started).toEqual([0, 1]);
    expect([slots.active, slots.queued]).toEqual([2, 3]);
    gates[1]!.resolve();
    await ticks();
    expect(started).toEqual([0, 1, 2]);
    gates[0]!.resolve();
    await ticks();
    expect(started).toEqual([0, 1, 2, 3]);
    for (const g of gates) g.resolve();
    expect(await Promise.all(done)).toEqual([0, 1, 2, 3, 4]);
    expect([slots.active, slots.queued]).toEqual([0, 0]);
  });

  it('frees the slot of a task that rejects or throws, and passes the error on', async () => {
    const slots = new Slots(1);
    const failing = deferred();
    const first = slots.run(() => failing.promise);
    const second = slots.run(() => {
      throw new Error('thrown');
    });
    const third = slots.run(async () => 'third');
    failing.reject(new Error('rejected'));
    await expect(first).rejects.toThrow('rejected');
    await expect(second).rejects.toThrow('thrown');
    await expect(third).resolves.toBe('third');
    expect([slots.active, slots.queued]).toEqual([0, 0]);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => new Slots(0)).toThrow(RangeError);
    expect(() => new Slots(1.5)).toThrow(RangeError);
  });

  it('gives the slot to the next after holdMs while the task goes on, and not twice when it then ends', async () => {
    const slots = new Slots(1);
    const slow = deferred<string>();
    const first = slots.run(() => slow.promise, 20);
    const second = slots.run(async () => 'second');
    await expect(second).resolves.toBe('second');
    expect([slots.active, slots.queued]).toEqual([0, 0]);
    slow.resolve('first');
    await expect(first).resolves.toBe('first');
    expect([slots.active, slots.queued]).toEqual([0, 0]);
    // A task that ends before its holdMs frees its slot then, and its timer with it.
    await expect(slots.run(async () => 'quick', 60_000)).resolves.toBe('quick');
    expect(slots.active).toBe(0);
  });
});
