// One open guest file: an agent handle whose every method is one queued agent command (so other callers of the
// same domain interleave between chunks), closed once on every path, with the close retried in the background
// while the guest's file systems are frozen (qemu-ga refuses guest-file-close then).
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { AGENT_ERROR_TEXT, isAgentError, isCommandDisabled } from '../core/agent-errors.js';
import type { ExactInteger } from '../transports/agent-json.js';
import { guestFileClose, guestFileFlush, guestFileRead, guestFileSeek, guestFileWrite } from '../commands/files.js';
import type { AgentCallOptions, AgentService } from '../core/service.js';
import { signalOf, type DomainRef, type SignalSource } from '../../domains/vocabulary.js';

/**
 * The agent's errno text decides the HTTP answer: qemu-ga reports "failed to open file '/x' (mode: 'r'): No such
 * file or directory" and the like (error_setg_errno), which libvirt folds into its message.
 */
export function mapFileError(err: unknown, path: string): unknown {
  if (!(err instanceof GatewayError) || err.code !== 'agent_error') return err;
  const desc = err.extras.agentDesc ?? err.message;
  const extras = {
    domain: err.extras.domain,
    command: err.extras.command,
    agentClass: err.extras.agentClass,
    agentDesc: err.extras.agentDesc,
  };
  if (AGENT_ERROR_TEXT.fileNotFound.test(desc)) return new GatewayError('file_not_found', `${path}: ${desc}`, extras);
  if (AGENT_ERROR_TEXT.filePermission.test(desc)) return new GatewayError('permission_denied', `${path}: ${desc}`, extras);
  if (AGENT_ERROR_TEXT.fileIsDirectory.test(desc)) return new GatewayError('invalid_request', `${path} is a directory: ${desc}`, extras);
  return err;
}

/** Counts the bytes that cross the agent (the metrics). */
export interface FileTransferObserver {
  read(bytes: number): void;
  written(bytes: number): void;
}

/** What an open file needs of the service that opened it and keeps it in its registry (files.ts). */
export interface GuestFileOwner {
  readonly agent: AgentService;
  readonly config: Config['files'];
  readonly log: Logger;
  /** Told of every chunk read or written. */
  readonly transfers: FileTransferObserver | null;
  /** Set at shutdown: no background close retries. */
  readonly stopping: boolean;
  /** The file is closed (or given up on): out of the registry. */
  forget(file: GuestFile): void;
}

export interface OpenOptions {
  /** Deadline of each command; the config's files.chunkTimeoutMs when absent. */
  timeoutMs?: number;
  /** The client going away: aborts the command in flight; the handle is still closed. */
  signal?: SignalSource;
  onCommand?: (execute: string) => void;
}

export class GuestFile {
  private readonly abort = new AbortController();
  private closing: Promise<void> | null = null;
  private readonly callOpts: AgentCallOptions;
  /** The client's signal, made when the file is opened. */
  private readonly clientSignal: AbortSignal | undefined;
  private readonly onClientGone = () => this.abort.abort(this.clientSignal?.reason);

  constructor(
    private readonly service: GuestFileOwner,
    readonly dom: DomainRef,
    readonly path: string,
    readonly handle: number,
    private readonly opts: OpenOptions,
  ) {
    this.callOpts = { timeoutMs: opts.timeoutMs ?? service.config.chunkTimeoutMs, signal: this.abort.signal, onCommand: opts.onCommand };
    this.clientSignal = signalOf(opts.signal);
    if (this.clientSignal?.aborted) this.onClientGone();
    else this.clientSignal?.addEventListener('abort', this.onClientGone, { once: true });
  }

  /** Aborted when the client went away or the gateway is stopping: the transfer must stop and close. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  private async call<R>(run: () => Promise<R>): Promise<R> {
    if (this.closing) throw new GatewayError('internal_error', `guest file handle ${this.handle} is already closed`);
    try {
      return await run();
    } catch (err) {
      throw mapFileError(err, this.path);
    }
  }

  /** Moves the position; answers the new one (a bigint past 2^53). */
  seek(offset: number, whence: 'set' | 'cur' | 'end'): Promise<ExactInteger> {
    return this.call(
      async () =>
        (await this.service.agent.execute(this.dom, guestFileSeek, { handle: this.handle, offset, whence }, this.callOpts)).position,
    );
  }

  /**
   * The file's size from a seek to its end, or null when the file cannot tell (qemu-ga can only seek; procfs files
   * refuse SEEK_END, and some report 0 while they hold data). Leaves the position at the end.
   */
  async size(): Promise<number | null> {
    let end: ExactInteger;
    try {
      end = await this.seek(0, 'end');
    } catch (err) {
      if (isAgentError(err, 'seekRefused')) return null;
      throw err;
    }
    if (typeof end === 'number' && end > 0) return end;
    // Past 2^53 no file is that large: an ext4 directory's end (2^63 - 1). The byte read below fails for a
    // directory ("Is a directory": 400) and tells an empty file from one the kernel does not size.
    await this.seek(0, 'set');
    const probe = await this.read(1);
    if (probe.data.length === 0) return 0;
    await this.seek(0, 'set');
    return null;
  }

  /** One guest-file-read of at most chunkBytes. */
  read(count: number): Promise<{ data: Buffer; eof: boolean }> {
    const n = Math.min(count, this.service.config.chunkBytes);
    return this.call(async () => {
      const reply = await this.service.agent.execute(this.dom, guestFileRead, { handle: this.handle, count: n }, this.callOpts);
      const data = Buffer.from(reply['buf-b64'], 'base64');
      this.service.transfers?.read(data.length);
      return { data, eof: reply.eof };
    });
  }

  /**
   * One guest-file-write; answers the bytes the agent wrote. Uploads give it files.writeChunkBytes at most (128 KiB
   * or less), well below what qemu-ga 7.2 misparses: a command of about 256 KiB (a 196,000-byte write failed with
   * "JSON parse error", and the rest of it was read as the start of the next command, so that the handle's close
   * failed and it stayed open). Whatever a caller passes, the agent service refuses (413) any command over
   * MAX_COMMAND_JSON_BYTES (core/command-limits.ts) before it is sent.
   */
  write(data: Buffer, order: Pick<AgentCallOptions, 'proceed' | 'onOutcome'> = {}): Promise<number> {
    return this.call(async () => {
      const reply = await this.service.agent.execute(
        this.dom,
        guestFileWrite,
        { handle: this.handle, 'buf-b64': data.toString('base64'), count: data.length },
        { ...this.callOpts, ...order },
      );
      this.service.transfers?.written(reply.count);
      return reply.count;
    });
  }

  flush(): Promise<void> {
    return this.call(async () => void (await this.service.agent.execute(this.dom, guestFileFlush, { handle: this.handle }, this.callOpts)));
  }

  /** Stops the transfer (a command in flight is abandoned) and closes the handle. */
  abortTransfer(reason: unknown): Promise<void> {
    this.abort.abort(reason);
    return this.close();
  }

  /**
   * Closes the handle once, whatever happened before; never throws (a failure is logged: the handle may stay open
   * in the guest until qemu-ga restarts, and nothing better can be done). Not tied to the client's signal.
   * While the guest's file systems are frozen qemu-ga refuses guest-file-close: then the close is retried in the
   * background every CLOSE_RETRY_MS for files.closeRetryMs (the handle stays in the registry meanwhile), and the
   * caller is not kept waiting.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.clientSignal?.removeEventListener('abort', this.onClientGone);
      const outcome = await this.attemptClose();
      if (outcome === 'refused' && !this.service.stopping) {
        this.service.log.info(
          { domain: this.dom.name, handle: this.handle },
          'guest-file-close refused while the guest is frozen; retrying in the background',
        );
        this.scheduleRetry(Date.now() + this.service.config.closeRetryMs);
        return;
      }
      this.gaveUp(outcome);
    })();
    return this.closing;
  }

  private retryTimer: NodeJS.Timeout | undefined;

  private scheduleRetry(until: number): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.attemptClose().then((outcome) => {
        if (outcome === 'refused' && Date.now() < until && !this.service.stopping) return this.scheduleRetry(until);
        this.gaveUp(outcome);
      });
    }, CLOSE_RETRY_MS);
  }

  /** Shutdown: a close waiting for a thaw gets one last attempt now. */
  async finalClose(): Promise<void> {
    if (!this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.gaveUp(await this.attemptClose());
  }

  private gaveUp(outcome: 'closed' | 'refused' | 'failed'): void {
    if (outcome === 'refused')
      this.service.log.warn(
        { domain: this.dom.name, handle: this.handle },
        'guest-file-close still refused (guest frozen); the handle may stay open in the guest',
      );
    this.service.forget(this);
  }

  private async attemptClose(): Promise<'closed' | 'refused' | 'failed'> {
    try {
      await this.service.agent.execute(
        this.dom,
        guestFileClose,
        { handle: this.handle },
        { timeoutMs: this.service.config.closeTimeoutMs, onCommand: this.opts.onCommand },
      );
      return 'closed';
    } catch (err) {
      if (refusedWhileFrozen(err)) return 'refused';
      this.service.log.warn(
        { domain: this.dom.name, handle: this.handle, err: err instanceof Error ? err.message : String(err) },
        'guest-file-close failed; the handle may stay open in the guest',
      );
      return 'failed';
    }
  }
}

const CLOSE_RETRY_MS = 2_000;

/** The gateway's freeze guard (409) or qemu-ga itself ("Command guest-file-close has been disabled...") refused it. */
function refusedWhileFrozen(err: unknown): boolean {
  return (err instanceof GatewayError && err.code === 'state_conflict') || isCommandDisabled(err);
}
