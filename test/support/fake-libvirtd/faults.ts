// The fake libvirtd's fault injection on calls: replies held back until released, replies delayed, errors
// injected in place of processing. (Faults of the byte stream, splitWrites and coalesce, are in server.ts; those of
// the daemon as a whole, ignoreKeepalive, acceptConnections, dropClients, on FakeLibvirtd itself.)
import { Program } from '../../../src/libvirt/protocol.js';
import type { FakeCall, ReplyHold } from './types.js';

/** Polls cond every few ms until it is true; rejects after timeoutMs with `what` in the message. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** What holdReplies matches: a procedure number of the REMOTE program, { program, procedure }, or a predicate. */
export type CallMatch = number | { program?: number; procedure: number } | ((call: FakeCall) => boolean);

interface HoldGate {
  match: (call: FakeCall) => boolean;
  queue: Array<() => void>;
  active: boolean;
}

function key(program: number, procedure: number): string {
  return `${program}:${procedure}`;
}

export class CallFaults {
  private readonly holds: HoldGate[] = [];
  private readonly delays = new Map<string, number>();
  private readonly injected = new Map<string, Array<{ code: number; message: string }>>();

  /** Delays every reply of one procedure by ms (0 removes the delay). */
  setReplyDelay(procedure: number, ms: number, program: number = Program.REMOTE): void {
    if (ms > 0) this.delays.set(key(program, procedure), ms);
    else this.delays.delete(key(program, procedure));
  }

  /** The delay set for this call's procedure (0 when none). */
  delayOf(call: FakeCall): number {
    return this.delays.get(key(call.program, call.procedure)) ?? 0;
  }

  /** Holds back the replies of matching calls (the call is processed, its reply waits) until released. */
  holdReplies(match: CallMatch): ReplyHold {
    const pred =
      typeof match === 'function'
        ? match
        : typeof match === 'number'
          ? (c: FakeCall) => c.program === Program.REMOTE && c.procedure === match
          : (c: FakeCall) => c.program === (match.program ?? Program.REMOTE) && c.procedure === match.procedure;
    const gate: HoldGate = { match: pred, queue: [], active: true };
    this.holds.push(gate);
    return {
      get held() {
        return gate.queue.length;
      },
      waitUntilHeld: (n, timeoutMs = 5000) => waitFor(() => gate.queue.length >= n, timeoutMs, `${n} held replies`),
      releaseOne: () => {
        const next = gate.queue.shift();
        next?.();
        return next !== undefined;
      },
      release: () => {
        gate.active = false;
        const i = this.holds.indexOf(gate);
        if (i >= 0) this.holds.splice(i, 1);
        for (const next of gate.queue.splice(0)) next();
      },
    };
  }

  /** Waits at every active gate that matches the call, one after the other. */
  async passGates(call: FakeCall): Promise<void> {
    for (const gate of [...this.holds]) {
      if (gate.active && gate.match(call)) await new Promise<void>((resolve) => gate.queue.push(resolve));
    }
  }

  /** The next `times` calls of this procedure fail with this libvirt error instead of being processed. */
  injectError(procedure: number, error: { code: number; message: string }, opts: { program?: number; times?: number } = {}): void {
    const k = key(opts.program ?? Program.REMOTE, procedure);
    const list = this.injected.get(k) ?? [];
    for (let i = 0; i < (opts.times ?? 1); i++) list.push(error);
    this.injected.set(k, list);
  }

  /** The error injected for this call, consumed; undefined when none is waiting. */
  takeInjected(call: FakeCall): { code: number; message: string } | undefined {
    return this.injected.get(key(call.program, call.procedure))?.shift();
  }

  /** Releases every held reply and forgets every gate, delay and injected error. */
  reset(): void {
    for (const gate of [...this.holds]) {
      gate.active = false;
      for (const next of gate.queue.splice(0)) next();
    }
    this.holds.length = 0;
    this.delays.clear();
    this.injected.clear();
  }

  /** Drops held replies without sending them (the fake is stopping). */
  drop(): void {
    for (const gate of this.holds) gate.queue.length = 0;
    this.holds.length = 0;
  }
}
