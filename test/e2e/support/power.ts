// guest-power, the one test guest the power and freeze tests may stop, suspend and reboot: its state and
// boot id read around the gateway (virsh), and bringing it back running with its agent answering.
import { agentCommand, guest, virsh, waitFor } from './guests.js';

export const powerGuest = guest((g) => g.name === 'guest-power', 'guest-power');

export function domState(name = powerGuest.name): string {
  return virsh('domstate', name).trim();
}

function agentAnswers(name: string): boolean {
  try {
    agentCommand(name, { execute: 'guest-ping' }, 3);
    return true;
  } catch {
    return false;
  }
}

/** Starts or wakes guest-power as needed, then waits until its agent answers guest-ping. */
export async function ensurePowerGuestRunning(timeoutMs = 120_000): Promise<void> {
  const name = powerGuest.name;
  await waitFor(
    `${name} running with its agent answering`,
    async () => {
      const state = domState(name);
      if (state === 'shut off') virsh('start', name);
      else if (state === 'pmsuspended') virsh('dompmwakeup', name);
      else if (state === 'running') return agentAnswers(name);
      return false;
    },
    timeoutMs,
    1000,
  );
}

/** The guest kernel's boot id: a new one proves a reboot. */
export function bootId(name = powerGuest.name): string {
  const { pid } = agentCommand(name, {
    execute: 'guest-exec',
    arguments: { path: '/bin/cat', arg: ['/proc/sys/kernel/random/boot_id'], 'capture-output': true },
  }) as { pid: number };
  for (let i = 0; i < 50; i++) {
    const st = agentCommand(name, { execute: 'guest-exec-status', arguments: { pid } }) as { exited: boolean; 'out-data'?: string };
    if (st.exited)
      return Buffer.from(st['out-data'] ?? '', 'base64')
        .toString('utf8')
        .trim();
    execSleep(100);
  }
  throw new Error('cat /proc/sys/kernel/random/boot_id did not finish');
}

function execSleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
