// The test guests (test/e2e/guests.json, also read by scripts/provision-guests.sh) and ways to act on them
// that go around the gateway: virsh, so that a test never checks the gateway with the gateway.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isInteger, parse as losslessParse } from 'lossless-json';

export interface TestGuest {
  name: string;
  uuid: string;
  mac: string;
  ip: string;
  agent: boolean;
  running: boolean;
  /** What it boots (scripts/guest/guests.py): busybox with the host's qemu-ga 7.2 (default), or Debian 13 with qemu-ga 10.0. */
  image?: 'busybox' | 'debian13';
  vcpus?: number;
  memoryMiB?: number;
  /** OpenStack Nova's metadata, written at provisioning (scripts/guest/nova_metadata.py; test/e2e/support/nova.ts). */
  nova?: GuestNova;
}

export interface GuestNova {
  /** The display name (<nova:name>). */
  name: string;
  project: { id: string; name: string };
  user: { id: string; name: string };
  flavor: string;
  /** As Nova writes it: YYYY-MM-DD HH:MM:SS, UTC. */
  creationTime: string;
}

export const guests: TestGuest[] = JSON.parse(readFileSync(new URL('../guests.json', import.meta.url), 'utf8'));

export function guest(predicate: (g: TestGuest) => boolean, what: string): TestGuest {
  const g = guests.find(predicate);
  if (!g) throw new Error(`guests.json has no ${what}`);
  return g;
}

export function virsh(...args: string[]): string {
  return execFileSync('virsh', ['-q', '-c', 'qemu:///system', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function agentCommand(domain: string, command: object, timeoutSeconds = 10): unknown {
  const out = virsh('qemu-agent-command', '--timeout', String(timeoutSeconds), domain, JSON.stringify(command));
  return (JSON.parse(out) as { return: unknown }).return;
}

/**
 * The agent's reply to one command exactly as it sent it: integers beyond 2^53 (qemu-ga 10's route flags, a
 * clock in ns) become bigint instead of being rounded the way JSON.parse would, so a test compares the
 * gateway with what the agent really said.
 */
export function agentCommandExact(domain: string, command: object, timeoutSeconds = 10): unknown {
  const out = virsh('qemu-agent-command', '--timeout', String(timeoutSeconds), domain, JSON.stringify(command));
  return (parseExactJson(out) as { return: unknown }).return;
}

/**
 * JSON.parse, but every integer literal too large for a double to hold exactly comes back as a bigint
 * (lossless-json, the library the gateway reads agents with, used here directly: a test does not check the gateway
 * with the gateway's own code).
 */
export function parseExactJson(text: string): any {
  return losslessParse(text, null, (digits) => {
    if (!isInteger(digits)) return Number(digits);
    const n = Number(digits);
    return Number.isSafeInteger(n) ? n : BigInt(digits);
  });
}

/** Fails loudly when the guests are not provisioned: the e2e tests never skip. */
export function assertProvisioned(): void {
  for (const g of guests) {
    let state: string;
    try {
      state = virsh('domstate', g.name).trim();
    } catch (err) {
      throw new Error(`test guest ${g.name} is not defined: run scripts/provision-guests.sh first (${(err as Error).message})`);
    }
    const wanted = g.running ? 'running' : 'shut off';
    if (state !== wanted) throw new Error(`test guest ${g.name} is '${state}', expected '${wanted}': run scripts/provision-guests.sh`);
  }
}

/**
 * Freezes the guest's qemu-ga with SIGSTOP for `seconds`, from inside the guest, then SIGCONT. The shell
 * backgrounds itself so that the guest-exec reply comes back before the agent stops.
 */
export function stopAgentFor(domain: string, seconds: number): void {
  const script =
    `(sleep 1; for p in $(pidof qemu-ga); do kill -STOP $p; done; sleep ${seconds}; ` +
    'for p in $(pidof qemu-ga); do kill -CONT $p; done) >/dev/null 2>&1 &';
  agentCommand(domain, { execute: 'guest-exec', arguments: { path: '/bin/sh', arg: ['-c', script] } });
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000, everyMs = 500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
