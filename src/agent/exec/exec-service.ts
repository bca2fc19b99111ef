// src/agent/exec: programs in the guest. This file: a caller's programs: start them (guest-exec), read their
// status (guest-exec-status), wait for them to exit, and keep each finished result for a while, because the agent
// forgets a process once it has said so. guest-program.ts runs the gateway's own fixed programs (an upload's rename).
//
// The output limit nobody can check beforehand: qemu-ga keeps up to 16 MiB per stream and sends all of it,
// base64-encoded, in the one reply that says the process exited. Over 4 MiB that reply fails libvirt's RPC
// (the output is lost: the agent has reaped the process); over 10 MiB libvirtd drops it and marks the
// domain's agent channel broken until the agent reconnects. The agent exposes no size before that reply,
// so the gateway cannot refuse it; what it does: documents that captured output must stay below about
// 3 MiB in all, answers 502 agent_reply_too_large (and keeps that answer) when libvirt could not carry the
// reply, and refuses guest-exec-status on the raw endpoint, so that this route is the only way to ask.
import type { Config } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { AGENT_ERROR_TEXT, isAgentError } from '../core/agent-errors.js';
import { MAX_COMMAND_JSON_BYTES, commandJsonBytes } from '../core/command-limits.js';
import { guestExec, guestExecStatus, type GuestExecArgs, type GuestExecStatus } from '../commands/exec.js';
import { PerDomainCache } from '../core/per-domain-cache.js';
import type { AgentCallOptions, AgentService } from '../core/service.js';
import { domainKey, signalOf, type DomainRef } from '../../domains/vocabulary.js';

export interface ExecOutput {
  /** 'text' when the bytes are valid UTF-8, else 'base64'. */
  encoding: 'text' | 'base64';
  data: string;
  bytes: number;
  /** The agent kept only the first 16 MiB. */
  truncated: boolean;
}

export interface ExecStatus {
  pid: number;
  exited: boolean;
  exitCode: number | null;
  signal: number | null;
  stdout: ExecOutput | null;
  stderr: ExecOutput | null;
}

export interface ExecStart {
  path: string;
  args?: string[];
  /** NAME=value strings, as guest-exec takes them. */
  env?: string[];
  input?: Buffer;
  captureOutput: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeOutput(b64: string | undefined, truncated: boolean | undefined): ExecOutput | null {
  if (b64 === undefined) return null;
  const bytes = Buffer.from(b64, 'base64');
  try {
    return { encoding: 'text', data: utf8.decode(bytes), bytes: bytes.length, truncated: truncated ?? false };
  } catch {
    return { encoding: 'base64', data: bytes.toString('base64'), bytes: bytes.length, truncated: truncated ?? false };
  }
}

export function toExecStatus(pid: number, s: GuestExecStatus): ExecStatus {
  return {
    pid,
    exited: s.exited,
    exitCode: s.exitcode ?? null,
    signal: s.signal ?? null,
    stdout: s.exited ? decodeOutput(s['out-data'], s['out-truncated']) : null,
    stderr: s.exited ? decodeOutput(s['err-data'], s['err-truncated']) : null,
  };
}

/** guest-exec's spawn failures are the caller's mistake (wrong path, not executable): 4xx with the agent's message. */
function mapStartError(err: unknown, path: string): unknown {
  if (!(err instanceof GatewayError) || err.code !== 'agent_error') return err;
  const desc = err.extras.agentDesc ?? '';
  const m = AGENT_ERROR_TEXT.spawnFailed.exec(desc);
  if (!m) return err;
  const reason = m[1]!;
  const code = /No such file or directory/.test(reason)
    ? 'file_not_found'
    : /Permission denied/.test(reason)
      ? 'permission_denied'
      : 'invalid_request';
  return new GatewayError(code, `the guest cannot run ${path}: ${desc}`, err.extras);
}

function mapStatusError(err: unknown, dom: DomainRef, pid: number): unknown {
  // libvirtd got the reply but could not fit it into one RPC message (4 MiB): the agent has reaped the
  // process with it, so its exit status and output are gone for good.
  if (err instanceof GatewayError && err.code === 'libvirt_error' && /Unable to encode message payload/.test(err.message)) {
    return new GatewayError(
      'agent_reply_too_large',
      `process ${pid} exited, but its captured output made the agent's reply too large for libvirt's 4 MiB message (libvirt: ` +
        `${err.message}); its exit status and output are lost. Keep captured output below about 3 MiB, ` +
        'or write it to a file in the guest',
      { ...err.extras, domain: dom.name },
    );
  }
  if (isAgentError(err, 'unknownPid')) {
    return new GatewayError(
      'process_not_found',
      `the guest agent knows no process ${pid}, and the gateway kept no result for it (started elsewhere, never started, ` +
        'or read longer ago than the result cache keeps)',
      {
        ...err.extras,
        domain: dom.name,
      },
    );
  }
  return err;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/** Who started which process: remembered for this many processes (all domains together) and this long. */
const OWNERS_MAX = 100_000;
const OWNER_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export class ExecService {
  /** Exited processes' results, or the error that lost one (asking again answers the same error, not 404). */
  readonly results: PerDomainCache<ExecStatus | GatewayError>;
  /** The identity that started each process through the gateway: its results are that identity's. */
  private readonly owners = new PerDomainCache<string>({ maxEntries: OWNERS_MAX, ttlMs: OWNER_TTL_MS });

  constructor(
    private readonly agent: AgentService,
    private readonly config: Config['exec'],
  ) {
    this.results = new PerDomainCache({ maxEntries: config.resultCacheSize, ttlMs: config.resultCacheTtlMs });
  }

  /** A process started (here or by a raw guest-exec) on behalf of `owner`: a result cached under its pid is stale. */
  started(dom: DomainRef, pid: number, owner: string): void {
    this.results.forget(domainKey(dom), pid);
    this.owners.set(domainKey(dom), pid, owner);
  }

  /** The identity that started the process through this gateway; undefined for one it did not start (or forgot). */
  ownerOf(dom: DomainRef, pid: number): string | undefined {
    return this.owners.get(domainKey(dom), pid);
  }

  /** The domain or its agent restarted: its pids now name other processes. */
  forgetDomain(key: string): void {
    this.results.forgetDomain(key);
    this.owners.forgetDomain(key);
  }

  async start(dom: DomainRef, req: ExecStart, opts: AgentCallOptions, owner: string): Promise<number> {
    const context = { domain: dom.name, command: guestExec.execute };
    if (req.input && req.input.length > this.config.maxInputBytes) {
      throw new GatewayError(
        'payload_too_large',
        `stdin of ${req.input.length} bytes is over the ${this.config.maxInputBytes} bytes the gateway sends with guest-exec ` +
          '(exec.maxInputBytes); write larger input to a file in the guest first',
        context,
      );
    }
    const args: GuestExecArgs = {
      path: req.path,
      ...(req.args?.length ? { arg: req.args } : {}),
      ...(req.env?.length ? { env: req.env } : {}),
      ...(req.input ? { 'input-data': req.input.toString('base64') } : {}),
      'capture-output': req.captureOutput,
    };
    const size = commandJsonBytes(guestExec.execute, args);
    if (size > MAX_COMMAND_JSON_BYTES) {
      throw new GatewayError(
        'payload_too_large',
        `the guest-exec command would be ${size} bytes of JSON (stdin base64-encoded), over the ${MAX_COMMAND_JSON_BYTES} bytes qemu-ga 7.2 parses reliably`,
        context,
      );
    }
    try {
      const { pid } = await this.agent.execute(dom, guestExec, args, opts);
      this.started(dom, pid, owner);
      return pid;
    } catch (err) {
      throw mapStartError(err, req.path);
    }
  }

  /** The process's status: the cached result once it has exited, else one guest-exec-status. */
  async status(dom: DomainRef, pid: number, opts: AgentCallOptions): Promise<ExecStatus> {
    const cached = this.results.get(domainKey(dom), pid);
    if (cached instanceof GatewayError) throw cached;
    if (cached) return cached;
    let reply: GuestExecStatus;
    try {
      reply = await this.agent.execute(dom, guestExecStatus, { pid }, opts);
    } catch (err) {
      const mapped = mapStatusError(err, dom, pid);
      if (mapped instanceof GatewayError && mapped.code === 'agent_reply_too_large') this.results.set(domainKey(dom), pid, mapped);
      throw mapped;
    }
    const status = toExecStatus(pid, reply);
    // The agent has just reaped it: this reply is the only copy of the result.
    if (status.exited) this.results.set(domainKey(dom), pid, status);
    return status;
  }

  /** Polls until the process exits or waitMs passes; answers the last status either way. */
  async wait(dom: DomainRef, pid: number, waitMs: number, opts: AgentCallOptions): Promise<ExecStatus> {
    const until = Date.now() + Math.min(waitMs, this.config.maxWaitMs);
    // Short first intervals for quick commands, then no more than two status calls a second.
    let interval = 25;
    const signal = signalOf(opts.signal);
    for (;;) {
      const status = await this.status(dom, pid, opts);
      if (status.exited || Date.now() >= until || signal?.aborted) return status;
      await sleep(Math.min(interval, Math.max(0, until - Date.now())), signal);
      interval = Math.min(interval * 2, 500);
    }
  }
}
