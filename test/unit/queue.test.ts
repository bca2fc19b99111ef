import { describe, expect, it } from 'vitest';
import { KeyedSerialQueue, QueueClosedError, QueueFullError } from '../../src/agent/core/queue.js';

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const never = () => new AbortController().signal;

describe('KeyedSerialQueue', () => {
  it('runs one task at a time per key, in order, and keys in parallel', async () => {
    const q = new KeyedSerialQueue({ maxWaiting: 10, abandonGraceMs: 1000 });
    const order: string[] = [];
    const gates = [deferred(), deferred(), deferred()];
    const a1 = q.run(
      'a',
      async () => {
        order.push('a1 start');
        await gates[0]!.promise;
        order.push('a1 end');
        return 1;
      },
      never(),
    );
    const a2 = q.run(
      'a',
      async () => {
        order.push('a2 start');
        return 2;
      },
      never(),
    );
    const b1 = q.run(
      'b',
      async () => {
        order.push('b1 start');
        await gates[1]!.promise;
        return 3;
      },
      never(),
    );
    await Promise.resolve();
    expect(order).toEqual(['a1 start', 'b1 start']);
    expect(q.depth('a')).toBe(2);
    gates[0]!.resolve();
    expect(await a1).toBe(1);
    expect(await a2).toBe(2);
    expect(order).toEqual(['a1 start', 'b1 start', 'a1 end', 'a2 start']);
    gates[1]!.resolve();
    expect(await b1).toBe(3);
    expect(q.totalDepth).toBe(0);
  });

  it('refuses a task past the bound with QueueFullError', async () => {
    const q = new KeyedSerialQueue({ maxWaiting: 2, abandonGraceMs: 1000 });
    const gate = deferred();
    const running = q.run('a', () => gate.promise, never());
    const w1 = q.run('a', async () => 'w1', never());
    const w2 = q.run('a', async () => 'w2', never());
    await expect(q.run('a', async () => 'w3', never())).rejects.toBeInstanceOf(QueueFullError);
    // Another key is not affected.
    await expect(q.run('b', async () => 'b', never())).resolves.toBe('b');
    gate.resolve();
    await running;
    expect(await w1).toBe('w1');
    expect(await w2).toBe('w2');
  });

  it('drops a waiting task whose signal aborts, without running it', async () => {
    const q = new KeyedSerialQueue({ maxWaiting: 5, abandonGraceMs: 1000 });
    const gate = deferred();
    const running = q.run('a', () => gate.promise, never());
    const ac = new AbortController();
    let ran = false;
    const waiting = q.run(
      'a',
      async () => {
        ran = true;
      },
      ac.signal,
    );
    ac.abort(new Error('deadline'));
    await expect(waiting).rejects.toThrow('deadline');
    expect(q.depth('a')).toBe(1);
    gate.resolve();
    await running;
    expect(ran).toBe(false);
    expect(q.depth('a')).toBe(0);
  });

  it('answers an aborted running task at once but holds the slot until the task settles', async () => {
    const q = new KeyedSerialQueue({ maxWaiting: 5, abandonGraceMs: 60_000 });
    const gate = deferred<string>();
    const ac = new AbortController();
    const first = q.run('a', () => gate.promise, ac.signal);
    let secondStarted = false;
    const second = q.run(
      'a',
      async () => {
        secondStarted = true;
        return 'second';
      },
      never(),
    );
    ac.abort(new Error('deadline'));
    await expect(first).rejects.toThrow('deadline');
    await new Promise((r) => setTimeout(r, 20));
    expect(secondStarted).toBe(false);
    gate.resolve('late');
    expect(await second).toBe('second');
  });

  it('frees the slot after the grace period when an abandoned task never settles', async () => {
    const q = new KeyedSerialQueue({ maxWaiting: 5, abandonGraceMs: 30 });
    const ac = new AbortController();
    const stuck = q.run('a', () => new Promise<never>(() => {}), ac.signal);
    const next = q.run('a', async () => 'next', never());
    ac.abort(new Error('deadline'));
    await expect(stuck).rejects.toThrow('deadline');
    expect(await next).toBe('next');
  });

  it('rejects a task whose signal is already aborted, and survives a task that throws synchronously', async () => {
    const q = new KeyedSerialQueue({ maxWaiting: 5, abandonGraceMs: 1000 });
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    await expect(q.run('a', async () => 1, ac.signal)).rejects.toThrow('gone');
    await expect(
      q.run(
        'a',
        () => {
          throw new Error('sync');
        },
        never(),
      ),
    ).rejects.toThrow('sync');
    await expect(q.run('a', async () => 'ok', never())).resolves.toBe('ok');
  });

  it('close() refuses new tasks and waits for running ones', async () => {
    const q = new KeyedSerialQueue({ maxWaiting: 5, abandonGraceMs: 1000 });
    const gate = deferred();
    const running = q.run('a', () => gate.promise, never());
    const closing = q.close(5000);
    await expect(q.run('b', async () => 1, never())).rejects.toBeInstanceOf(QueueClosedError);
    gate.resolve();
    await running;
    expect(await closing).toBe(true);
  });

  it('close() gives up after its timeout', async () => {
    const q = new KeyedSerialQueue({ maxWaiting: 5, abandonGraceMs: 1000 });
    void q.run('a', () => new Promise<never>(() => {}), never());
    expect(await q.close(20)).toBe(false);
  });
});
