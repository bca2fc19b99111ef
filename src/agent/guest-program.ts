// Runs one of the gateway's own fixed programs in a guest (guest-exec, then guest-exec-status until it exits)
// and answers its exit status and output. Apart from ExecService on purpose: these are not a caller's
// processes, so they take no room in its result cache and belong to no identity.
import { GatewayError } from '../errors.js';
import type { DomainRef } from '../libvirt/client.js';
import { guestExec, guestExecStatus } from './exec-commands.js';
import type { GuestProgram } from './replace-commands.js';
import type { AgentCallOptions, AgentService } from './service.js';

export interface ProgramOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

const text = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('utf8');

/** Polls quickly at first (these programs take a few ms), then at most twice a second, until maxWaitMs. */
export async function runGuestProgram(agent: AgentService, dom: DomainRef, program: GuestProgram, maxWaitMs: number, opts: AgentCallOptions): Promise<ProgramOutcome> {
  let pid: number;
  try {
    ({ pid } = await agent.execute(dom, guestExec, { path: program.path, arg: program.args, 'capture-output': true }, opts));
  } catch (err) {
    // GLib's spawn message, which qemu-ga passes on: the guest has no such program (or may not run it).
    if (err instanceof GatewayError && err.code === 'agent_error' && /Failed to execute child process/.test(err.extras.agentDesc ?? '')) {
      throw new GatewayError('guest_program_missing', `the guest cannot run ${program.path}: ${err.extras.agentDesc}`, err.extras);
    }
    throw err;
  }
  const until = Date.now() + maxWaitMs;
  for (let interval = 10; ; interval = Math.min(interval * 2, 500)) {
    const s = await agent.execute(dom, guestExecStatus, { pid }, opts);
    if (s.exited) return { exitCode: s.exitcode ?? null, stdout: text(s['out-data']), stderr: text(s['err-data']) };
    if (Date.now() >= until) throw new GatewayError('deadline_exceeded', `the guest program ${program.path} (pid ${pid}) did not finish within ${maxWaitMs} ms`, { domain: dom.name });
    await new Promise((r) => setTimeout(r, interval));
  }
}
