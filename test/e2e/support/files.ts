// Acting on a guest's files around the gateway: shell commands through guest-exec (virsh), to create, hash
// and delete test files and to look at qemu-ga's open file descriptors.
import { agentCommand } from './guests.js';

export interface ShellResult {
  exitcode: number;
  stdout: string;
  stderr: string;
}

/** Runs a busybox sh script in the guest and waits for it (guest-exec, then guest-exec-status until it exits). */
export async function guestShell(domain: string, script: string, timeoutMs = 60_000): Promise<ShellResult> {
  const { pid } = agentCommand(domain, {
    execute: 'guest-exec',
    arguments: { path: '/bin/sh', arg: ['-c', script], 'capture-output': true },
  }) as { pid: number };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = agentCommand(domain, { execute: 'guest-exec-status', arguments: { pid } }) as {
      exited: boolean;
      exitcode?: number;
      'out-data'?: string;
      'err-data'?: string;
    };
    if (s.exited) {
      return {
        exitcode: s.exitcode ?? -1,
        stdout: Buffer.from(s['out-data'] ?? '', 'base64').toString('utf8'),
        stderr: Buffer.from(s['err-data'] ?? '', 'base64').toString('utf8'),
      };
    }
    if (Date.now() > deadline) throw new Error(`guest script did not finish within ${timeoutMs} ms: ${script}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Like guestShell, but a non-zero exit is an error; answers stdout. */
export async function guestRun(domain: string, script: string, timeoutMs?: number): Promise<string> {
  const r = await guestShell(domain, script, timeoutMs);
  if (r.exitcode !== 0) throw new Error(`guest script exited ${r.exitcode}: ${script}\n${r.stderr}`);
  return r.stdout;
}

/** sha256 of a guest file (busybox sha256sum). */
export async function guestSha256(domain: string, path: string): Promise<string> {
  return (await guestRun(domain, `sha256sum '${path}'`)).split(/\s+/)[0]!;
}

/**
 * qemu-ga's open file descriptors: how many, and the targets of those under `under`. The script itself runs under
 * guest-exec, whose output pipes are open in qemu-ga meanwhile: the same every time, so counts compare.
 * A descriptor qemu-ga closes between the listing and its readlink (the pipes of an earlier guest-exec, say) is
 * gone, not an error: a CI run once failed on exactly that race. No qemu-ga at all is still an error.
 */
export async function agentFds(domain: string, under: string): Promise<{ count: number; matching: string[] }> {
  const out = await guestRun(
    domain,
    'pids=$(pidof qemu-ga) || exit 3; for p in $pids; do for f in /proc/$p/fd/*; do readlink "$f" 2>/dev/null || :; done; done',
  );
  const targets = out.split('\n').filter(Boolean);
  return { count: targets.length, matching: targets.filter((t) => t.startsWith(under)) };
}
