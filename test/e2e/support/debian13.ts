// The Debian 13 guest (guests.json "debian13": systemd, qemu-ga 10.0, ext4 root on a virtio disk, user qgauser):
// raw agent replies read around the gateway (virsh) without rounding, the gateway's answers read the same way,
// and bringing the guest back (running, agent answering, thawed) after tests that reboot, restart or freeze it.
import { guestRun } from './files.js';
import { agentCommand, agentCommandExact, assertProvisioned, guest, parseExactJson, virsh, waitFor } from './guests.js';

export const deb = guest((g) => g.name === 'debian13', 'debian13');
export const DOM = deb.name;
export const DOMAIN_REF = { host: 'local', name: deb.name, uuid: deb.uuid };

/** JSON.parse with integers beyond 2^53 as exact bigints (qemu-ga 10's route flags, the clock in ns). */
export const parseLossless = parseExactJson;

/** The agent's reply to one command, through virsh, with its big integers exact. */
export const rawExact = (command: object, timeoutSeconds = 10): any => agentCommandExact(DOM, command, timeoutSeconds);

/** The agent's error for a command it refuses, as virsh prints it (libvirt's "unable to execute ... : desc"). */
export function rawError(command: object): string {
  try {
    agentCommand(DOM, command);
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? (err as Error).message);
  }
  throw new Error(`the agent accepted ${JSON.stringify(command)}`);
}

export interface Answer {
  status: number;
  type: string | null;
  headers: Headers;
  text: string;
  body: any;
}

/** One call to the gateway; the answer's JSON read losslessly (big integers as bigint). */
export async function call(base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), headers: res.headers, text, body: text ? parseLossless(text) : null };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a /bin/sh script in the guest through virsh and answers its stdout (non-zero exit: error). */
export const sh = (script: string, timeoutMs?: number) => guestRun(DOM, script, timeoutMs);

export function agentAnswers(timeoutSeconds = 3): boolean {
  try {
    agentCommand(DOM, { execute: 'guest-ping' }, timeoutSeconds);
    return true;
  } catch {
    return false;
  }
}

/** Thaws the guest through virsh whatever froze it; never throws (the guest may be rebooting). */
export function thawRaw(): void {
  try {
    agentCommand(DOM, { execute: 'guest-fsfreeze-thaw' }, 30);
  } catch {
    /* not frozen, or no agent right now */
  }
}

/** Starts debian13 if it is off, then waits until its agent answers guest-ping (a TCG boot takes about 25-30 s). */
export async function ensureDebian13Up(timeoutMs = 240_000): Promise<void> {
  await waitFor(
    'debian13 running with its agent answering',
    async () => {
      const state = virsh('domstate', DOM).trim();
      if (state === 'shut off') virsh('start', DOM);
      if (state !== 'running') return false;
      return agentAnswers();
    },
    timeoutMs,
    1000,
  );
}

/** The suite's precondition: the guests are provisioned and debian13 runs qemu-ga 10 with its root on /dev/vda. */
export async function assertDebian13(): Promise<void> {
  assertProvisioned();
  await ensureDebian13Up();
  const info = agentCommand(DOM, { execute: 'guest-info' }) as { version: string };
  if (!info.version.startsWith('10.'))
    throw new Error(`debian13 runs qemu-ga ${info.version}, expected 10.x: run scripts/provision-guests.sh`);
  // A freeze some earlier run left behind would hang every write of the guest.
  thawRaw();
}

/** The guest's clock (guest-get-time, exact) and the host's, in ns. */
export const rawTimeNs = (): bigint => BigInt(rawExact({ execute: 'guest-get-time' }));
export const hostNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
export const SECOND = 1_000_000_000n;
export const absBig = (x: bigint) => (x < 0n ? -x : x);

/**
 * Sets the guest clock (and its RTC, hwclock -w) back to the host's through virsh: the last resort of a test that
 * moved the clock, whatever the gateway did.
 */
export function restoreClockRaw(): void {
  try {
    virsh('qemu-agent-command', '--timeout', '30', DOM, `{"execute":"guest-set-time","arguments":{"time":${hostNs().toString()}}}`);
  } catch {
    /* no agent right now: the test has failed already */
  }
}

/** Every vCPU back online through virsh (guest-set-vcpus); never throws. */
export function onlineAllVcpusRaw(): void {
  try {
    const vcpus = agentCommand(DOM, { execute: 'guest-get-vcpus' }) as { 'logical-id': number; online: boolean }[];
    const off = vcpus.filter((v) => !v.online).map((v) => ({ 'logical-id': v['logical-id'], online: true }));
    if (off.length) agentCommand(DOM, { execute: 'guest-set-vcpus', arguments: { vcpus: off } });
  } catch {
    /* no agent right now */
  }
}
