// src/agent/core: how every call to a guest agent runs, whatever it is for and whichever transport carries it.
// The agent service (this file) runs typed commands one at a time per domain (queue.ts), under a deadline that
// covers queueing and the call, gated on what the agent offers (capabilities.ts) and on the guards (the freeze
// registry), refused when larger than qemu-ga parses reliably (command-limits.ts), with the reply read without
// losing 64-bit integers (transports/agent-json.ts, commands/reply-integers.ts) and checked against the command's schema; the
// transport's errors become the gateway's in src/domains/backend-errors.ts, and agent-errors.ts reads the agent's
// own. Around it, one folder per feature: commands/ (the catalogue of commands), transports/ (libvirt, agent
// socket), files/, exec/, freeze/, power/, guest/ (settings, time, accounts, addresses) and raw/ (the raw endpoint).
import type { z } from 'zod';
import type { CommandKind, Config } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { agentError, backendError } from '../../domains/backend-errors.js';
import { domainKey, signalOf, type DomainRef, type SignalSource } from '../../domains/vocabulary.js';
import type { AgentCommand } from '../commands/define.js';
import { commandFacts } from '../commands/index.js';
import { guestInfo, type guestInfoReply } from '../commands/info.js';
import type { AgentTransport, SyncReport } from '../transports/transport.js';
import { parseAgentJson, stringifyJson } from '../transports/agent-json.js';
import { CapabilityCache, type AgentCapabilities } from './capabilities.js';
import { MAX_COMMAND_JSON_BYTES } from './command-limits.js';
import { KeyedSerialQueue, QueueClosedError, QueueFullError } from './queue.js';

export interface AgentCallOptions {
  /** The deadline for this call; the command kind's default when absent. */
  timeoutMs?: number;
  /**
   * Aborts when the caller has gone away; or a function making that signal, called only when a command is sent (a
   * request's signal costs an AbortController, which most requests never need). signalOf() reads either.
   */
  signal?: SignalSource;
  /** Told the name of each command sent, for the request log. */
  onCommand?: (execute: string) => void;
  /**
   * Checked when the command's turn in the domain's queue comes: false drops it unsent. With onOutcome, which
   * runs before the next command in the queue starts, a write queued behind a failed write of the same file
   * is never sent (it would land after a gap).
   */
  proceed?: () => boolean;
  onOutcome?: (ok: boolean) => void;
}

class DeadlineError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`deadline of ${timeoutMs} ms passed`);
  }
}

/** A rule about which commands a domain may get right now (e.g. none but a few while its file systems are frozen). */
export interface CommandGuard {
  /** Throws a GatewayError when the command must not be sent to the domain now. */
  check(dom: DomainRef, execute: string): void;
  /** Told of every command that succeeded. */
  succeeded?(dom: DomainRef, execute: string): void;
}

/** Watches every call through a domain's queue (the metrics): when it queues, and how and after how long it ends. */
export interface AgentCallObserver {
  queued(dom: DomainRef, execute: string): void;
  /** seconds: from queueing to the end, queue wait included; error: null when the call succeeded. */
  settled(dom: DomainRef, execute: string, seconds: number, error: GatewayError | null): void;
}

export class AgentService {
  private readonly queue: KeyedSerialQueue;
  readonly capabilityCache = new CapabilityCache();
  private readonly guards: CommandGuard[] = [];
  private observer: AgentCallObserver | null = null;

  constructor(
    /** libvirt or the agent's own socket, by the domain's host. */
    readonly transportFor: (dom: DomainRef) => AgentTransport,
    private readonly config: Config['agent'],
  ) {
    this.queue = new KeyedSerialQueue({ maxWaiting: config.queueDepth, abandonGraceMs: config.abandonGraceMs });
  }

  addGuard(guard: CommandGuard): void {
    this.guards.push(guard);
  }

  /** One observer (the gateway's metrics) is told of every call that takes a domain's queue. */
  observe(observer: AgentCallObserver): void {
    this.observer = observer;
  }

  /** Commands running or waiting over all domains. */
  get totalQueueDepth(): number {
    return this.queue.totalDepth;
  }

  /** Commands running or waiting for one domain. */
  queueDepth(dom: DomainRef): number {
    return this.queue.depth(domainKey(dom));
  }

  defaultTimeoutMs(cmd: AgentCommand<unknown, unknown>): number {
    return this.config.timeoutsMs[cmd.kind];
  }

  /** What the domain's agent offers, from guest-info, cached until its agent or the domain changes state. */
  capabilities(dom: DomainRef, opts: AgentCallOptions = {}): Promise<AgentCapabilities> {
    return this.capabilityCache.get(domainKey(dom), async () => toCapabilities(await this.send(dom, guestInfo, undefined, opts)));
  }

  /** Asks the agent afresh what it offers (guest-info, sent like any command) and caches that for the domain; answers the reply. */
  async refreshCapabilities(dom: DomainRef, opts: AgentCallOptions = {}): Promise<z.infer<typeof guestInfoReply>> {
    const info = await this.execute(dom, guestInfo, undefined, opts);
    this.capabilityCache.set(domainKey(dom), toCapabilities(info));
    return info;
  }

  /** Refuses (501) a command the domain's agent does not list as supported and enabled, without sending it. */
  async ensureSupported(dom: DomainRef, execute: string, opts: AgentCallOptions = {}): Promise<void> {
    if (commandFacts(execute)?.ungated) return;
    const caps = await this.capabilities(dom, opts);
    const info = caps.commands.get(execute);
    if (info?.enabled) return;
    const why = info ? 'has it disabled' : 'does not support it';
    throw new GatewayError('command_not_supported', `the guest agent (qemu-ga ${caps.version}) ${why}: ${execute}`, {
      domain: dom.name,
      command: execute,
      agentVersion: caps.version,
    });
  }

  /** Runs one typed command after the guards allow it and the agent is known to offer it. */
  async execute<A, R>(dom: DomainRef, cmd: AgentCommand<A, R>, args: A, opts: AgentCallOptions = {}): Promise<R> {
    const reply = await this.send(dom, cmd, await this.admit(dom, cmd, args, opts), opts);
    for (const guard of this.guards) guard.succeeded?.(dom, cmd.execute);
    return reply;
  }

  /**
   * Runs one libvirt call that takes the domain's agent job itself (virDomainShutdownFlags, virDomainReboot,
   * virDomainPMSuspendForDuration, ...) like a command: guarded and gated on `execute`, queued on the domain,
   * under the deadline. fn gets a signal that aborts at the deadline or when the caller goes away.
   */
  async runExclusive<R>(
    dom: DomainRef,
    execute: string,
    kind: CommandKind,
    fn: (signal: AbortSignal) => Promise<R>,
    opts: AgentCallOptions = {},
  ): Promise<R> {
    for (const guard of this.guards) guard.check(dom, execute);
    await this.ensureSupported(dom, execute, opts);
    const result = await this.exclusive(dom, execute, this.config.timeoutsMs[kind], ({ signal }) => fn(signal), opts);
    for (const guard of this.guards) guard.succeeded?.(dom, execute);
    return result;
  }

  /**
   * For a command that never replies on success (guest-shutdown, guest-suspend-*) over a transport that
   * does not know that itself (the agent's socket): guarded, gated and queued like any other, sent without
   * waiting for a reply. The channel resynchronises before the next command.
   */
  async executeWithoutReply<A>(dom: DomainRef, cmd: AgentCommand<A, unknown>, args: A, opts: AgentCallOptions = {}): Promise<void> {
    const payload = this.payload(dom, cmd.execute, await this.admit(dom, cmd, args, opts));
    await this.exclusive(
      dom,
      cmd.execute,
      this.defaultTimeoutMs(cmd),
      (run) => this.transportFor(dom).command(dom, payload, { ...run, expectReply: false }),
      opts,
    );
    for (const guard of this.guards) guard.succeeded?.(dom, cmd.execute);
  }

  /** Checks the arguments, then asks the guards and the agent's capabilities; answers the parsed arguments. */
  private async admit<A>(dom: DomainRef, cmd: AgentCommand<A, unknown>, args: A, opts: AgentCallOptions): Promise<A> {
    const parsedArgs = cmd.args.safeParse(args);
    if (!parsedArgs.success) {
      throw new GatewayError('invalid_request', `invalid arguments for ${cmd.execute}: ${parsedArgs.error.message}`, {
        domain: dom.name,
        command: cmd.execute,
      });
    }
    for (const guard of this.guards) guard.check(dom, cmd.execute);
    await this.ensureSupported(dom, cmd.execute, opts);
    return parsedArgs.data;
  }

  /**
   * guest-sync or guest-sync-delimited through the domain's transport, queued like a command: is the channel in
   * step? Without a command, the transport's default; one the transport cannot send is 400 before it queues.
   */
  sync(dom: DomainRef, command: SyncReport['command'] | undefined, opts: AgentCallOptions = {}): Promise<SyncReport> {
    const transport = this.transportFor(dom);
    const chosen = command ?? transport.syncCommands[0]!;
    if (!transport.syncCommands.includes(chosen)) {
      const why =
        transport.backend === 'libvirt'
          ? "libvirt cannot read the 0xFF byte it puts before its reply (it would mark the domain's agent broken)"
          : 'this transport cannot send it';
      throw new GatewayError(
        'invalid_request',
        `${chosen} is not sent through ${transport.backend}: ${why}; use ${transport.syncCommands.join(' or ')}`,
        { domain: dom.name, command: chosen },
      );
    }
    return this.exclusive(dom, chosen, this.config.timeoutsMs.quick, (run) => transport.sync(dom, chosen, run), opts);
  }

  /** The command's JSON, refused (413) when larger than qemu-ga parses reliably. */
  private payload(dom: DomainRef, execute: string, args: unknown): string {
    // stringifyJson: a bigint argument (guest-set-time's nanoseconds) goes out as the exact integer it is.
    const payload = stringifyJson(args === undefined ? { execute } : { execute, arguments: args });
    // Whatever a route allowed, nothing larger than qemu-ga parses reliably leaves here: a misread command
    // desynchronises the domain's agent channel (command-limits.ts).
    const bytes = Buffer.byteLength(payload);
    if (bytes > MAX_COMMAND_JSON_BYTES) {
      throw new GatewayError(
        'payload_too_large',
        `the ${execute} command would be ${bytes} bytes of JSON, over the ${MAX_COMMAND_JSON_BYTES} bytes the guest agent parses reliably`,
        {
          domain: dom.name,
          command: execute,
        },
      );
    }
    return payload;
  }

  /** Queues and sends one command under its deadline; no capability check. */
  private async send<A, R>(dom: DomainRef, cmd: AgentCommand<A, R>, args: A, opts: AgentCallOptions): Promise<R> {
    const payload = this.payload(dom, cmd.execute, args);
    // The reply is read inside the call, so that the metrics see an agent's error or a bad reply as the call's outcome.
    return this.exclusive(
      dom,
      cmd.execute,
      this.defaultTimeoutMs(cmd),
      async (run) =>
        this.parseReply(cmd, await this.transportFor(dom).command(dom, payload, { ...run, expectReply: true }), {
          domain: dom.name,
          command: cmd.execute,
        }),
      opts,
    );
  }

  /** The one path every call to a domain's agent takes: its FIFO queue, under one deadline for wait and call. */
  private async exclusive<R>(
    dom: DomainRef,
    execute: string,
    defaultTimeoutMs: number,
    call: (run: { signal: AbortSignal; deadlineAt: number }) => Promise<R>,
    opts: AgentCallOptions,
  ): Promise<R> {
    const context = { domain: dom.name, command: execute };
    const timeoutMs = Math.min(opts.timeoutMs ?? defaultTimeoutMs, this.config.maxTimeoutMs);
    const deadlineAt = Date.now() + timeoutMs;
    // One controller for both ways a call ends early: the deadline, and the caller going away.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new DeadlineError(timeoutMs)), timeoutMs);
    const callerSignal = signalOf(opts.signal);
    const callerGone = () => abort.abort(callerSignal!.reason);
    if (callerSignal?.aborted) callerGone();
    else callerSignal?.addEventListener('abort', callerGone, { once: true });
    let startedAt = 0;
    const queuedAt = performance.now();
    this.observer?.queued(dom, execute);
    try {
      const result = await this.queue.run(
        domainKey(dom),
        () => {
          if (opts.proceed && !opts.proceed())
            return Promise.reject(new GatewayError('agent_error', `${execute} not sent: an earlier command it depends on failed`, context));
          startedAt = Date.now();
          opts.onCommand?.(execute);
          const result = call({ signal: abort.signal, deadlineAt });
          if (!opts.onOutcome) return result;
          return result.then(
            (value) => {
              opts.onOutcome!(true);
              return value;
            },
            (err: unknown) => {
              opts.onOutcome!(false);
              throw err;
            },
          );
        },
        abort.signal,
      );
      this.observer?.settled(dom, execute, (performance.now() - queuedAt) / 1000, null);
      return result;
    } catch (err) {
      const error = this.toGatewayError(err, timeoutMs, startedAt, context);
      this.observer?.settled(dom, execute, (performance.now() - queuedAt) / 1000, error);
      throw error;
    } finally {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', callerGone);
    }
  }

  private parseReply<R>(cmd: AgentCommand<unknown, R>, raw: string | null, context: { domain: string; command: string }): R {
    if (raw === null) throw new GatewayError('agent_reply_invalid', `the guest agent sent no reply to ${cmd.execute}`, context);
    let json: unknown;
    try {
      // Lossless: integers beyond 2^53 (u64 counters, nanoseconds, sign-extended flags) become bigints, never rounded.
      json = parseAgentJson(raw);
    } catch {
      throw new GatewayError('agent_reply_invalid', `the reply to ${cmd.execute} is not JSON`, context);
    }
    // libvirt folds an {"error": ...} reply into its own error (src/domains/backend-errors.ts); a transport without libvirt
    // hands it over as it came.
    if (json && typeof json === 'object' && 'error' in json) {
      const { class: agentClass, desc } = (json.error ?? {}) as { class?: unknown; desc?: unknown };
      throw agentError(
        cmd.execute,
        typeof desc === 'string' ? desc : '',
        typeof agentClass === 'string' ? agentClass : 'GenericError',
        context,
      );
    }
    if (!json || typeof json !== 'object' || !('return' in json)) {
      throw new GatewayError('agent_reply_invalid', `the reply to ${cmd.execute} has no "return" member`, context);
    }
    const parsed = cmd.reply.safeParse(json.return);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      const where = first?.path.length ? first.path.join('.') : 'reply';
      throw new GatewayError(
        'agent_reply_invalid',
        `unexpected reply to ${cmd.execute} at ${where}: ${first?.message ?? 'invalid'}`,
        context,
      );
    }
    return parsed.data;
  }

  private toGatewayError(err: unknown, timeoutMs: number, startedAt: number, context: { domain: string; command: string }): GatewayError {
    if (err instanceof DeadlineError) {
      const where = startedAt ? 'the guest agent did not answer' : 'the command was still waiting in the queue behind earlier commands';
      return new GatewayError('deadline_exceeded', `${where} within the ${timeoutMs} ms deadline`, context);
    }
    if (err instanceof QueueFullError) {
      return new GatewayError('agent_queue_full', `${err.message}; try again later`, {
        ...context,
        retryAfter: this.config.retryAfterSeconds,
      });
    }
    if (err instanceof QueueClosedError)
      return new GatewayError('shutting_down', err.message, { ...context, retryAfter: this.config.retryAfterSeconds });
    if (err instanceof Error && err.name === 'AbortError') return new GatewayError('client_gone', 'the client went away', context);
    return backendError(err, context);
  }

  /** Refuses new commands; waits for queued and running ones to finish or reach their deadline. */
  close(timeoutMs: number): Promise<boolean> {
    return this.queue.close(timeoutMs);
  }
}

export function toCapabilities(info: {
  version: string;
  supported_commands: { name: string; enabled: boolean; 'success-response': boolean }[];
}): AgentCapabilities {
  return {
    version: info.version,
    commands: new Map(info.supported_commands.map((c) => [c.name, { enabled: c.enabled, successResponse: c['success-response'] }])),
  };
}
