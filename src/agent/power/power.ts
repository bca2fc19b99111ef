// src/agent/power: power actions: shutdown, halt, reboot and suspend. None of the agent commands behind them replies on
// success, so the gateway never waits for a reply: shutdown, reboot and suspend go through libvirt's own
// agent-aware APIs (which know that), halt through guest-shutdown {"mode":"halt"}, where libvirt's
// "Guest agent disappeared while executing command" (or our deadline, once sent) means "sent". Domains reached
// over their agent socket have no libvirt: there every action is its agent command, sent without awaiting a reply.
import { GatewayError } from '../../errors.js';
import type { LibvirtHosts } from '../../libvirt/hosts.js';
import { SuspendTarget, type DomainStateName } from '../../libvirt/protocol.js';
import { isAgentError } from '../core/agent-errors.js';
import type { AgentCommand } from '../commands/define.js';
import { guestShutdown, guestSuspendDisk, guestSuspendHybrid, guestSuspendRam } from '../commands/system.js';
import type { AgentCallOptions, AgentService } from '../core/service.js';
import type { DomainRef } from '../../domains/vocabulary.js';

export const POWER_ACTIONS = ['shutdown', 'halt', 'reboot', 'suspend-disk', 'suspend-ram', 'suspend-hybrid'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

const SUSPEND_COMMANDS: Partial<Record<PowerAction, AgentCommand<undefined, unknown>>> = {
  'suspend-ram': guestSuspendRam,
  'suspend-disk': guestSuspendDisk,
  'suspend-hybrid': guestSuspendHybrid,
};
const SHUTDOWN_MODES: Partial<Record<PowerAction, 'powerdown' | 'halt' | 'reboot'>> = {
  shutdown: 'powerdown',
  halt: 'halt',
  reboot: 'reboot',
};

/** What a caller will see once the action takes effect: GET /domains/{domain} and libvirt's events. */
export interface PowerExpectation {
  /** The state GET /domains/{domain} should reach; for reboot the state stays running. */
  state: DomainStateName;
  /** libvirt lifecycle events (virDomainEventType names) that confirm it, in order. */
  lifecycleEvents: string[];
  /** What happens to agentState on GET /domains/{domain}. */
  agentState: string;
}

interface PowerPlan {
  /** The agent command libvirt (or the gateway) sends, which capability gating checks. */
  execute: string;
  expect: PowerExpectation;
}

const PLANS: Record<PowerAction, PowerPlan> = {
  shutdown: {
    execute: guestShutdown.execute,
    expect: { state: 'shutoff', lifecycleEvents: ['shutdown', 'stopped'], agentState: 'disconnected' },
  },
  halt: {
    execute: guestShutdown.execute,
    // A halted guest stops its CPUs; whether QEMU then powers off is the guest's choice (busybox's halt does).
    expect: {
      state: 'shutoff',
      lifecycleEvents: ['shutdown', 'stopped'],
      agentState: 'disconnected (stays so if the guest halts without powering off)',
    },
  },
  reboot: {
    execute: guestShutdown.execute,
    expect: { state: 'running', lifecycleEvents: [], agentState: 'disconnected, then connected again once the guest has booted' },
  },
  'suspend-ram': {
    execute: guestSuspendRam.execute,
    expect: {
      state: 'pmsuspended',
      lifecycleEvents: ['pmsuspended'],
      agentState: 'disconnected until the guest wakes (virsh dompmwakeup)',
    },
  },
  'suspend-hybrid': {
    execute: guestSuspendHybrid.execute,
    expect: {
      state: 'pmsuspended',
      lifecycleEvents: ['pmsuspended'],
      agentState: 'disconnected until the guest wakes (virsh dompmwakeup)',
    },
  },
  'suspend-disk': {
    execute: guestSuspendDisk.execute,
    // A guest that cannot write its image (no swap) resumes at once and stays running.
    expect: { state: 'shutoff', lifecycleEvents: ['pmsuspended', 'stopped'], agentState: 'disconnected' },
  },
};

const SUSPEND_TARGETS: Partial<Record<PowerAction, number>> = {
  'suspend-ram': SuspendTarget.MEM,
  'suspend-disk': SuspendTarget.DISK,
  'suspend-hybrid': SuspendTarget.HYBRID,
};

export interface PowerOutcome {
  action: PowerAction;
  command: string;
  expect: PowerExpectation;
}

export class PowerService {
  constructor(
    private readonly agent: AgentService,
    private readonly hosts: LibvirtHosts,
  ) {}

  /** Sends the action; resolves once the guest has it (never waits for the effect). */
  async perform(dom: DomainRef, action: PowerAction, opts: AgentCallOptions = {}): Promise<PowerOutcome> {
    const plan = PLANS[action];
    if (this.agent.transportFor(dom).backend === 'agent-socket') return this.viaAgentSocket(dom, action, opts);
    const outcome = { action, command: plan.execute, expect: plan.expect };
    if (action === 'halt') {
      await this.halt(dom, opts);
      return outcome;
    }
    // libvirt waits for the guest's SHUTDOWN / RESET event or the agent's disconnect (up to 60 s): 'slow'.
    const libvirt = this.hosts.client(dom);
    const call =
      action === 'shutdown'
        ? (signal: AbortSignal) => libvirt.shutdownViaAgent(dom, signal)
        : action === 'reboot'
          ? (signal: AbortSignal) => libvirt.rebootViaAgent(dom, signal)
          : (signal: AbortSignal) => libvirt.pmSuspend(dom, SUSPEND_TARGETS[action]!, signal);
    let sent = false;
    const onCommand = (execute: string) => {
      sent = true;
      opts.onCommand?.(execute);
    };
    try {
      await this.agent.runExclusive(dom, plan.execute, 'slow', call, { ...opts, onCommand });
    } catch (err) {
      // libvirt gives a guest that is slow to go down 60 s, then fails; the request had reached the guest.
      if (sent && err instanceof GatewayError && isNoReplyError(err)) return outcome;
      throw suspendModeError(err, action, dom);
    }
    return outcome;
  }

  /**
   * Without libvirt: the agent command itself, sent without awaiting a reply (none comes on success); the
   * channel resynchronises before the next command. QEMU, not libvirt, sees the guest go down: no events,
   * and a suspended guest still looks running (its socket stays).
   */
  private async viaAgentSocket(dom: DomainRef, action: PowerAction, opts: AgentCallOptions): Promise<PowerOutcome> {
    const plan = PLANS[action];
    const mode = SHUTDOWN_MODES[action];
    if (mode) await this.agent.executeWithoutReply(dom, guestShutdown, { mode }, opts);
    else await this.agent.executeWithoutReply(dom, SUSPEND_COMMANDS[action]!, undefined, opts);
    const state: DomainStateName = action === 'suspend-ram' || action === 'suspend-hybrid' ? 'running' : plan.expect.state;
    return { action, command: plan.execute, expect: { ...plan.expect, state, lifecycleEvents: [] } };
  }

  /** No libvirt API halts: guest-shutdown {"mode":"halt"} through the agent, where silence means success. */
  private async halt(dom: DomainRef, opts: AgentCallOptions): Promise<void> {
    let sent = false;
    const onCommand = (execute: string) => {
      if (execute === guestShutdown.execute) sent = true;
      opts.onCommand?.(execute);
    };
    try {
      await this.agent.execute(dom, guestShutdown, { mode: 'halt' }, { ...opts, onCommand });
    } catch (err) {
      if (sent && err instanceof GatewayError && isNoReplyError(err)) return;
      throw err;
    }
  }
}

/** The ways a no-reply command ends once the agent has it: the agent vanished with the guest, or time ran out. */
function isNoReplyError(err: GatewayError): boolean {
  if (err.code === 'deadline_exceeded') return !/waiting in the queue/.test(err.message);
  return err.code === 'agent_unresponsive' && /disappeared/.test(err.message);
}

/** qemu-ga refuses a suspend mode the guest's kernel does not offer: that is a 501, not an agent failure. */
function suspendModeError(err: unknown, action: PowerAction, dom: DomainRef): unknown {
  if (isAgentError(err, 'suspendNotSupported')) {
    return new GatewayError('suspend_not_supported', `the guest cannot ${action}: ${err.extras.agentDesc}`, {
      ...err.extras,
      domain: dom.name,
    });
  }
  return err;
}
