// Runs one of the gateway's own fixed programs in a guest (guest-exec, then guest-exec-status until it exits)
// and answers its exit status and output. Apart from ExecService on purpose: these are not a caller's
// processes, so they take no room in its result cache and belong to no identity.
import { GatewayError } from '../../errors.js';
import { isAgentError } from '../core/agent-errors.js';
import { guestExec, guestExecStatus } from '../commands/exec.js';
import type { AgentCallOptions, AgentService } from '../core/service.js';
import type { DomainRef } from '../../domains/vocabulary.js';

/** A program to run in the guest: its absolute path and arguments (no shell unless the path is one). */
export interface GuestProgram {
  path: string;
  args: string[];
}

export interface ProgramOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

const text = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('utf8');

/**
 * Polls quickly at first, every 100 ms at most for the first 2 s, then twice a second, until maxWaitMs. These
 * programs take a few ms with busybox but ~0.5 s with a GNU userland under TCG (each of the replace script's
 * ~8 processes ~45 ms): a doubling interval would have answered a 0.45 s script only at 0.63 s.
 */
export async function runGuestProgram(
  agent: AgentService,
  dom: DomainRef,
  program: GuestProgram,
  maxWaitMs: number,
  opts: AgentCallOptions,
): Promise<ProgramOutcome> {
  let pid: number;
  try {
    ({ pid } = await agent.execute(dom, guestExec, { path: program.path, arg: program.args, 'capture-output': true }, opts));
  } catch (err) {
    // GLib's spawn message, which qemu-ga passes on: the guest has no such program (or may not run it).
    if (isAgentError(err, 'spawnFailed')) {
      throw new GatewayError('guest_program_missing', `the guest cannot run ${program.path}: ${err.extras.agentDesc}`, err.extras);
    }
    throw err;
  }
  const started = Date.now();
  const until = started + maxWaitMs;
  for (let interval = 10; ; interval = Date.now() - started < 2_000 ? Math.min(interval * 2, 100) : 500) {
    const s = await agent.execute(dom, guestExecStatus, { pid }, opts);
    if (s.exited) return { exitCode: s.exitcode ?? null, stdout: text(s['out-data']), stderr: text(s['err-data']) };
    if (Date.now() >= until)
      throw new GatewayError('deadline_exceeded', `the guest program ${program.path} (pid ${pid}) did not finish within ${maxWaitMs} ms`, {
        domain: dom.name,
      });
    await new Promise((r) => setTimeout(r, interval));
  }
}
