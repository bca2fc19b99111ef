// Many hosts' pools losing one libvirtd at once (a libvirtd restart): their reconnects must spread out, not arrive
// together. H = 30 pools of 3 connections against one fake libvirtd, as a gateway listing the same daemon under 30
// names. Time is fake (vi.useFakeTimers: the pools' reconnect timers) while the sockets are real: the test advances
// the clock 100 ms at a time, lets every connection attempt that the step started finish on the real socket, and
// counts per step what the fake accepted and what the pools opened. So the buckets are exact, whatever the machine's
// load: nothing here depends on how fast the wall clock runs.
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LibvirtConnection, type ConnectionOptions } from '../../src/libvirt/connection.js';
import { LibvirtPool, reconnectDelay } from '../../src/libvirt/pool.js';
import { RemoteProc } from '../../src/libvirt/procedures.js';
import { FakeLibvirtd } from '../support/fake-libvirtd.js';

const log = pino({ level: 'silent' });
const HOSTS = 30;
const SIZE = 3;
const STEP_MS = 100;
// The production defaults (config/schema.ts).
const INITIAL_MS = 250;
const MAX_MS = 10_000;

let fake: FakeLibvirtd | null = null;
let pools: LibvirtPool[] = [];

afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  for (const p of pools) await p.close();
  pools = [];
  await fake?.stop();
  fake = null;
});

describe('reconnectDelay (decorrelated jitter)', () => {
  it('stays between the initial delay and three times the previous one, capped at the maximum', () => {
    expect(reconnectDelay(250, 250, 10_000, () => 0)).toBe(250);
    expect(reconnectDelay(250, 250, 10_000, () => 1)).toBe(750);
    expect(reconnectDelay(750, 250, 10_000, () => 1)).toBe(2250);
    expect(reconnectDelay(6750, 250, 10_000, () => 1)).toBe(10_000);
    expect(reconnectDelay(10_000, 250, 10_000, () => 0.5)).toBe(10_000);
    expect(reconnectDelay(10_000, 250, 10_000, () => 0)).toBe(250);
    // A maximum below the initial delay wins.
    expect(reconnectDelay(250, 250, 100, () => 0.3)).toBe(100);
    for (let i = 0; i < 1000; i++) {
      const previous = 250 + Math.random() * 20_000;
      const d = reconnectDelay(previous, 250, 10_000);
      expect(d).toBeGreaterThanOrEqual(250);
      expect(d).toBeLessThanOrEqual(Math.min(10_000, previous * 3));
    }
  });

  it('grows on average from failure to failure, so that a slot retrying long waits long', () => {
    let sum1 = 0;
    let sum5 = 0;
    for (let run = 0; run < 2000; run++) {
      let d = INITIAL_MS;
      for (let i = 1; i <= 5; i++) {
        d = reconnectDelay(d, INITIAL_MS, MAX_MS);
        if (i === 1) sum1 += d;
        if (i === 5) sum5 += d;
      }
    }
    // The first delay averages 500 ms; the fifth is several times longer.
    expect(sum1 / 2000).toBeGreaterThan(400);
    expect(sum1 / 2000).toBeLessThan(600);
    expect(sum5 / 2000).toBeGreaterThan(3 * (sum1 / 2000));
  });
});

/** Counts LibvirtConnection.open calls in flight, overall and per pool (each pool has its own options object). */
function trackAttempts() {
  const open = LibvirtConnection.open.bind(LibvirtConnection);
  const perPool = new Map<ConnectionOptions, number>();
  const state = { inFlight: 0, started: 0, maxPerPool: 0 };
  vi.spyOn(LibvirtConnection, 'open').mockImplementation(async (opts) => {
    state.inFlight++;
    state.started++;
    const n = (perPool.get(opts) ?? 0) + 1;
    perPool.set(opts, n);
    state.maxPerPool = Math.max(state.maxPerPool, n);
    try {
      return await open(opts);
    } finally {
      state.inFlight--;
      perPool.set(opts, perPool.get(opts)! - 1);
    }
  });
  return state;
}

/**
 * Lets real I/O run (setImmediate is not faked) until cond holds. A guard against hanging, in real time, not an
 * assertion on timing.
 */
async function settle(cond: () => boolean, what: string): Promise<void> {
  const giveUp = performance.now() + 10_000;
  while (!cond()) {
    if (performance.now() > giveUp) throw new Error(`not settled: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

async function startPools(opts: { connectTimeoutMs?: number } = {}) {
  fake = await FakeLibvirtd.start();
  fake.addDomain({ name: 'vm1' });
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  const attempts = trackAttempts();
  let opened = 0;
  for (let i = 0; i < HOSTS; i++) {
    const pool = new LibvirtPool(
      fake.poolOptions({ size: SIZE, backoffInitialMs: INITIAL_MS, backoffMaxMs: MAX_MS, connectTimeoutMs: opts.connectTimeoutMs ?? 2000 }),
      log,
    );
    pool.on('connectionUp', () => opened++);
    pools.push(pool);
    pool.start();
  }
  const allUp = () => pools.every((p) => p.up === SIZE);
  await settle(() => allUp() && attempts.inFlight === 0 && pools.every((p) => p.eventsSubscribed), 'every pool up');
  expect(fake.connectionCount).toBe(HOSTS * SIZE);
  return { attempts, allUp, opened: () => opened };
}

/** Advances fake time by one step and lets the attempts it started finish; returns what the step saw. */
async function step(attempts: { inFlight: number }, opened: () => number, until: () => boolean = () => attempts.inFlight === 0) {
  const accepted0 = fake!.totalConnections;
  const opened0 = opened();
  await vi.advanceTimersByTimeAsync(STEP_MS);
  await settle(until, 'the attempts of one step');
  return { accepted: fake!.totalConnections - accepted0, opened: opened() - opened0 };
}

describe(`${HOSTS} pools of ${SIZE} losing one libvirtd at once`, () => {
  it('retry one connection per pool at a time while libvirtd refuses, spread over time, and all come back', async () => {
    const { attempts, allUp, opened } = await startPools();
    attempts.maxPerPool = 0;
    // libvirtd goes away: every client dropped, new connections closed at once, for 3 s.
    fake!.acceptConnections = false;
    fake!.dropClients();
    await settle(() => pools.every((p) => p.up === 0), 'every connection lost');
    const DOWN_MS = 3000;
    const refused: number[] = [];
    for (let t = 0; t < DOWN_MS; t += STEP_MS) refused.push((await step(attempts, opened)).accepted);
    const perPoolWhileDown = attempts.maxPerPool;
    fake!.acceptConnections = true;
    const back: number[] = [];
    const openedPerStep: number[] = [];
    // Every pool is whole again within a bound: its probe waits at most backoffMaxMs / 3 while it is down, its followers
    // at most 3 x backoffInitialMs more (and each step adds up to 100 ms).
    const bound = MAX_MS / SIZE + 3 * INITIAL_MS + 2 * STEP_MS;
    for (let t = 0; t < 2 * MAX_MS && !allUp(); t += STEP_MS) {
      const s = await step(attempts, opened);
      back.push(s.accepted);
      openedPerStep.push(s.opened);
    }
    const buckets = `refused per 100 ms: ${refused.join(' ')}; accepted after: ${back.join(' ')}`;
    expect(allUp(), buckets).toBe(true);
    expect(back.length * STEP_MS, buckets).toBeLessThanOrEqual(bound);
    expect(openedPerStep.reduce((a, b) => a + b, 0)).toBe(HOSTS * SIZE);
    // Never two attempts of one pool at once while it is down (once one is open, the others may follow together).
    expect(perPoolWhileDown, buckets).toBe(1);
    // No 100 ms with more than a third of the 90 connections: the first retries alone would put 54 into one bucket with
    // the old equal jitter (all 90 within 125-250 ms); here each pool retries once within 250-750 ms.
    expect(Math.max(...refused, ...back), buckets).toBeLessThanOrEqual(30);
    // Each pool keeps trying while libvirtd is away, one slot at a time: at most one attempt per 250 ms, plus the first
    // of the slot that lost its connection next (the third one waits without a timer).
    const attemptsWhileDown = refused.reduce((a, b) => a + b, 0);
    expect(attemptsWhileDown, buckets).toBeGreaterThanOrEqual(HOSTS);
    expect(attemptsWhileDown, buckets).toBeLessThanOrEqual(HOSTS * (DOWN_MS / INITIAL_MS + 1));
    for (const p of pools) expect(p.eventsSubscribed || p.up === SIZE).toBe(true);
  });

  it('a libvirtd that listens but does not serve yet (its drivers starting) holds one attempt per pool, not three', async () => {
    // Attempts wait there for the whole start: no setup deadline of ours runs out meanwhile.
    const { attempts, allUp, opened } = await startPools({ connectTimeoutMs: 120_000 });
    attempts.maxPerPool = 0;
    fake!.acceptConnections = false;
    fake!.dropClients();
    await settle(() => pools.every((p) => p.up === 0), 'every connection lost');
    // Stopped for 1 s (connections refused), then listening for 3 s without answering: a real libvirtd accepts nothing
    // until its drivers have started, so attempts sit in its listen backlog; here AUTH_LIST is not answered.
    for (let t = 0; t < 1000; t += STEP_MS) await step(attempts, opened);
    fake!.acceptConnections = true;
    const hold = fake!.holdReplies(RemoteProc.AUTH_LIST);
    for (let t = 0; t < 3000; t += STEP_MS) await step(attempts, opened, () => attempts.inFlight === hold.held);
    const waiting = hold.held;
    expect(attempts.maxPerPool).toBe(1);
    // Every pool's probe waits there by now, and nothing else: its last refused attempt was at some t < 1 s, and its
    // next delay is at most three times the one before, itself at most t, so it came before 4 t < 4 s.
    expect(waiting).toBe(HOSTS);
    const before = opened();
    hold.release();
    await settle(() => attempts.inFlight === 0, 'the held attempts');
    const burst = opened() - before;
    expect(burst).toBe(waiting);
    const later: number[] = [];
    for (let t = 0; t < 2 * MAX_MS && !allUp(); t += STEP_MS) later.push((await step(attempts, opened)).opened);
    const buckets = `opened at once ${burst}, then per 100 ms: ${later.join(' ')}`;
    expect(allUp(), buckets).toBe(true);
    // The pools' other connections follow 250-750 ms after their probe, spread.
    expect(later.length * STEP_MS, buckets).toBeLessThanOrEqual(3 * INITIAL_MS + STEP_MS);
    expect(Math.max(...later), buckets).toBeLessThanOrEqual(30);
  });
});
