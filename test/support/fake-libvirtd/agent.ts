// What libvirt does around a guest agent command, as the fake libvirtd plays it: its checks (domain running, agent
// configured and connected), its agent job (one command per domain at a time, 68 after a bounded wait), its
// timeouts (86 "not available for now"), and how it folds the agent's error into its own (1 "internal error:
// unable to execute QEMU agent command 'X': desc"). The agent itself is the test's AgentHandler.
import { parseAgentJson } from '../../../src/agent/transports/agent-json.js';
import { VirErrorCode } from '../../../src/libvirt/protocol.js';
import {
  DomainState,
  FakeRpcError,
  VIR_ERR_INVALID_ARG,
  type AgentCommand,
  type AgentHandler,
  type AgentLogEntry,
  type AgentReply,
  type FakeDomain,
} from './types.js';

export interface AgentSettings {
  /** One agent command per domain at a time (libvirt's agent job). */
  serialize: boolean;
  /** How long a command waits for the domain's agent job before error 68. */
  jobWaitMs: number;
  /** The length of one "second" of agent timeouts. */
  secondMs: number;
  /** The timeout of -1 (VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT), in agent seconds. */
  defaultTimeoutSeconds: number;
}

const NO_ANSWER = Symbol('no answer');

/** One agent job per domain, FIFO, with a bounded wait. */
class JobLock {
  private busy = false;
  private readonly waiters: Array<{ grant: () => void }> = [];

  acquire(waitMs: number, timers: Set<NodeJS.Timeout>): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          timers.delete(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        timers.delete(timer);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(
          new FakeRpcError(
            VirErrorCode.OPERATION_TIMEOUT,
            'Timed out during operation: cannot acquire state change lock (held by agent=remoteDispatchDomainQemuAgentCommand)',
          ),
        );
      }, waitMs);
      timers.add(timer);
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next.grant();
    else this.busy = false;
  }
}

/** libvirt's refusals before a command reaches the agent. */
function checkAgentUsable(dom: FakeDomain): void {
  if (dom.state !== DomainState.RUNNING)
    throw new FakeRpcError(VirErrorCode.OPERATION_INVALID, 'Requested operation is not valid: domain is not running');
  if (dom.agent === 'none')
    throw new FakeRpcError(VirErrorCode.ARGUMENT_UNSUPPORTED, 'argument unsupported: QEMU guest agent is not configured');
  if (dom.agent === 'disconnected')
    throw new FakeRpcError(VirErrorCode.AGENT_UNRESPONSIVE, 'Guest agent is not responding: QEMU guest agent is not connected');
}

function agentFailed(execute: string, error: { class: string; desc?: string }): FakeRpcError {
  return new FakeRpcError(
    VirErrorCode.INTERNAL_ERROR,
    `internal error: unable to execute QEMU agent command '${execute}': ${error.desc ?? error.class}`,
  );
}

/** The fake's guest agents: every domain's commands, its agent jobs and the counts tests read. */
export class FakeAgents {
  private readonly jobLocks = new WeakMap<FakeDomain, JobLock>();
  private readonly inFlightBy = new Map<string, number>();
  private readonly peakBy = new Map<string, number>();

  constructor(
    private readonly settings: AgentSettings,
    /** The handler in use now (the fake's agentHandler, which tests replace). */
    private readonly handler: () => AgentHandler,
    /** Every command that reached the handler (the fake's agentLog). */
    private readonly log: AgentLogEntry[],
    /** Timers the fake cancels on stop(). */
    private readonly timers: Set<NodeJS.Timeout>,
  ) {}

  inFlight(domain: string): number {
    return this.inFlightBy.get(domain) ?? 0;
  }

  peakInFlight(domain: string): number {
    return this.peakBy.get(domain) ?? 0;
  }

  resetPeaks(): void {
    this.peakBy.clear();
  }

  /** QEMU DOMAIN_AGENT_COMMAND: the agent's reply text, or libvirt's error. */
  async command(clientId: number, dom: FakeDomain, cmd: string, timeout: number): Promise<string> {
    const name = dom.name;
    const inFlight = this.inFlight(name) + 1;
    this.inFlightBy.set(name, inFlight);
    this.peakBy.set(name, Math.max(inFlight, this.peakInFlight(name)));
    try {
      if (timeout < -2)
        throw new FakeRpcError(VIR_ERR_INVALID_ARG, `invalid argument: guest agent timeout '${timeout}' is less than the minimum '-2'`);
      return await this.underJob(dom, () => this.run(clientId, dom, cmd, timeout));
    } finally {
      this.inFlightBy.set(name, this.inFlight(name) - 1);
    }
  }

  /**
   * virDomainShutdownFlags / virDomainReboot with the GUEST_AGENT flag (2), virDomainPMSuspendForDuration: the
   * agent handler gets the command (logged like any other); an { error } or { libvirtError } fails the call as
   * libvirt would, anything else ({ hang } included: these commands never reply) succeeds at once.
   */
  async power(clientId: number, dom: FakeDomain, flags: number, command: AgentCommand): Promise<void> {
    if (flags !== 2)
      throw new FakeRpcError(
        VIR_ERR_INVALID_ARG,
        `invalid argument: the fake only implements the guest agent method (flags 2), got ${flags}`,
      );
    await this.underJob(dom, async () => {
      checkAgentUsable(dom);
      this.log.push({ domain: dom.name, execute: command.execute, arguments: command.arguments, timeoutSeconds: 60, clientId });
      const reply = await Promise.race([Promise.resolve(this.handler()(dom, command, 60)), Promise.resolve({ hang: true as const })]);
      if ('libvirtError' in reply) throw new FakeRpcError(reply.libvirtError.code, reply.libvirtError.message);
      if ('error' in reply) throw agentFailed(command.execute, reply.error);
    });
  }

  /** Runs fn holding the domain's agent job, when agent commands are serialised. */
  private async underJob<T>(dom: FakeDomain, fn: () => Promise<T>): Promise<T> {
    let lock: JobLock | null = null;
    if (this.settings.serialize) {
      lock = this.jobLocks.get(dom) ?? new JobLock();
      this.jobLocks.set(dom, lock);
      await lock.acquire(this.settings.jobWaitMs, this.timers);
    }
    try {
      return await fn();
    } finally {
      lock?.release();
    }
  }

  private async run(clientId: number, dom: FakeDomain, cmd: string, timeout: number): Promise<string> {
    checkAgentUsable(dom);
    let parsed: unknown;
    try {
      // As libvirt's own parser: 64-bit integers exact (bigints past 2^53), so tests see what the agent would.
      parsed = parseAgentJson(cmd);
    } catch (err) {
      throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: cannot parse json ${cmd}: ${(err as Error).message}`);
    }
    const obj = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    const execute = typeof obj.execute === 'string' ? obj.execute : '<unknown>';
    let reply: AgentReply;
    if (typeof obj.execute !== 'string') {
      reply = { error: { class: 'GenericError', desc: "QMP input lacks member 'execute'" } };
    } else {
      const command = obj as AgentCommand;
      this.log.push({ domain: dom.name, execute, arguments: command.arguments, timeoutSeconds: timeout, clientId });
      const seconds = timeout === -1 ? this.settings.defaultTimeoutSeconds : timeout;
      const handler = this.handler();
      reply = await this.withTimeout(() => handler(dom, command, timeout), timeout === -2 ? null : seconds * this.settings.secondMs);
    }
    if ('raw' in reply) {
      // Only its shape is read here (an error carries no large integer): the text itself goes out untouched.
      const shape = JSON.parse(reply.raw) as { error?: { class: string; desc?: string } };
      if (!shape.error) return reply.raw.trim();
      reply = { error: shape.error };
    }
    if ('libvirtError' in reply) throw new FakeRpcError(reply.libvirtError.code, reply.libvirtError.message);
    if ('error' in reply) throw agentFailed(execute, reply.error);
    if ('return' in reply) return JSON.stringify({ return: reply.return });
    throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: unable to execute QEMU agent command '${execute}'`);
  }

  /** Runs the handler; past timeoutMs (null = never) answers libvirt's agent timeout error. { hang } never answers. */
  private async withTimeout(run: () => AgentReply | Promise<AgentReply>, timeoutMs: number | null): Promise<AgentReply> {
    let result: AgentReply | Promise<AgentReply>;
    try {
      result = run();
    } catch (err) {
      throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: agent handler failed: ${(err as Error).message}`);
    }
    const answer: Promise<AgentReply | typeof NO_ANSWER> = Promise.resolve(result).then<AgentReply | typeof NO_ANSWER>(
      (r) => ('hang' in r ? new Promise<typeof NO_ANSWER>(() => {}) : r),
      (err: unknown) => {
        throw new FakeRpcError(VirErrorCode.INTERNAL_ERROR, `internal error: agent handler failed: ${(err as Error).message}`);
      },
    );
    if (timeoutMs === null) return (await answer) as AgentReply;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<typeof NO_ANSWER>((resolve) => {
      timer = setTimeout(() => {
        this.timers.delete(timer!);
        resolve(NO_ANSWER);
      }, timeoutMs);
      this.timers.add(timer);
    });
    try {
      const r = await Promise.race([answer, timedOut]);
      if (r === NO_ANSWER)
        throw new FakeRpcError(VirErrorCode.AGENT_UNRESPONSIVE, 'Guest agent is not responding: Guest agent not available for now');
      return r;
    } finally {
      clearTimeout(timer);
      this.timers.delete(timer!);
    }
  }
}
