// Open guest files: one object per agent handle, whose every method is one queued agent command (so other
// callers of the same domain interleave between chunks), and the registry of the handles open right now, so
// that a handle is closed on every path: success, error, deadline, client gone, gateway shutdown.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { DomainRef } from '../libvirt/client.js';
import { domainKey } from '../libvirt/hosts.js';
import { guestFileClose, guestFileFlush, guestFileOpen, guestFileRead, guestFileSeek, guestFileWrite, type FileOpenMode } from './file-commands.js';
import type { AgentCallOptions, AgentService } from './service.js';

/** Base64 of n bytes, the size of the RPC string that carries them (before JSON framing). */
const base64Length = (n: number) => Math.ceil(n / 3) * 4;
/** The base64 a write may carry: well under the ~256 KiB command that qemu-ga 7.2 misparses (see write()). */
const WRITE_BASE64_MAX = 200 * 1024;

/**
 * The agent's errno text decides the HTTP answer: qemu-ga reports "failed to open file '/x' (mode: 'r'): No such
 * file or directory" and the like (error_setg_errno), which libvirt folds into its message.
 */
export function mapFileError(err: unknown, path: string): unknown {
  if (!(err instanceof GatewayError) || err.code !== 'agent_error') return err;
  const desc = err.extras.agentDesc ?? err.message;
  const extras = { domain: err.extras.domain, command: err.extras.command, agentClass: err.extras.agentClass, agentDesc: err.extras.agentDesc };
  if (/No such file or directory|Not a directory/.test(desc)) return new GatewayError('file_not_found', `${path}: ${desc}`, extras);
  if (/Permission denied|Operation not permitted|Read-only file system/.test(desc)) return new GatewayError('permission_denied', `${path}: ${desc}`, extras);
  if (/Is a directory/.test(desc)) return new GatewayError('invalid_request', `${path} is a directory: ${desc}`, extras);
  return err;
}

export interface OpenOptions {
  /** Deadline of each command; the config's files.chunkTimeoutMs when absent. */
  timeoutMs?: number;
  /** The client going away: aborts the command in flight; the handle is still closed. */
  signal?: AbortSignal;
  onCommand?: (execute: string) => void;
}

export class GuestFile {
  private readonly abort = new AbortController();
  private closing: Promise<void> | null = null;
  private readonly callOpts: AgentCallOptions;
  private readonly onClientGone = () => this.abort.abort(this.opts.signal?.reason);

  constructor(
    private readonly service: GuestFileService,
    readonly dom: DomainRef,
    readonly path: string,
    readonly handle: number,
    private readonly opts: OpenOptions,
  ) {
    this.callOpts = { timeoutMs: opts.timeoutMs ?? service.config.chunkTimeoutMs, signal: this.abort.signal, onCommand: opts.onCommand };
    if (opts.signal?.aborted) this.onClientGone();
    else opts.signal?.addEventListener('abort', this.onClientGone, { once: true });
  }

  /** Aborted when the client went away or the gateway is stopping: the transfer must stop and close. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  private async call<R>(run: () => Promise<R>): Promise<R> {
    if (this.closing) throw new GatewayError('internal_error', `guest file handle ${this.handle} is already closed`);
    try {
      return await run();
    } catch (err) {
      throw mapFileError(err, this.path);
    }
  }

  /** Moves the position; answers the new one. */
  seek(offset: number, whence: 'set' | 'cur' | 'end'): Promise<number> {
    return this.call(async () => (await this.service.agent.execute(this.dom, guestFileSeek, { handle: this.handle, offset, whence }, this.callOpts)).position);
  }

  /**
   * The file's size from a seek to its end, or null when the file cannot tell (qemu-ga can only seek; procfs files
   * refuse SEEK_END, and some report 0 while they hold data). Leaves the position at the end.
   */
  async size(): Promise<number | null> {
    let end: number;
    try {
      end = await this.seek(0, 'end');
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'agent_error' && /Invalid argument|Illegal seek/.test(err.extras.agentDesc ?? '')) return null;
      throw err;
    }
    if (end > 0) return end;
    // 0: an empty file, or one whose size the kernel does not know. One byte read tells them apart.
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
   * One guest-file-write of at most writeChunkBytes. Answers the bytes the agent wrote. A larger command is refused
   * here: qemu-ga 7.2 misparses a command of about 256 KiB (a 196,000-byte write failed with "JSON parse error", and
   * the rest of it was read as the start of the next command, so that the handle's close failed and it stayed open).
   */
  write(data: Buffer): Promise<number> {
    if (data.length > this.service.config.writeChunkBytes || base64Length(data.length) > WRITE_BASE64_MAX) {
      throw new GatewayError('internal_error', `a write of ${data.length} bytes is larger than one write chunk`);
    }
    return this.call(async () => {
      const reply = await this.service.agent.execute(this.dom, guestFileWrite, { handle: this.handle, 'buf-b64': data.toString('base64'), count: data.length }, this.callOpts);
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
      this.opts.signal?.removeEventListener('abort', this.onClientGone);
      const outcome = await this.attemptClose();
      if (outcome === 'refused' && !this.service.stopping) {
        this.service.log.info({ domain: this.dom.name, handle: this.handle }, 'guest-file-close refused while the guest is frozen; retrying in the background');
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
    if (outcome === 'refused') this.service.log.warn({ domain: this.dom.name, handle: this.handle }, 'guest-file-close still refused (guest frozen); the handle may stay open in the guest');
    this.service.forget(this);
  }

  private async attemptClose(): Promise<'closed' | 'refused' | 'failed'> {
    try {
      await this.service.agent.execute(this.dom, guestFileClose, { handle: this.handle }, { timeoutMs: this.service.config.closeTimeoutMs, onCommand: this.opts.onCommand });
      return 'closed';
    } catch (err) {
      if (refusedWhileFrozen(err)) return 'refused';
      this.service.log.warn({ domain: this.dom.name, handle: this.handle, err: err instanceof Error ? err.message : String(err) }, 'guest-file-close failed; the handle may stay open in the guest');
      return 'failed';
    }
  }
}

const CLOSE_RETRY_MS = 2_000;

/** The gateway's freeze guard (409) or qemu-ga itself ("Command guest-file-close has been disabled") refused it. */
function refusedWhileFrozen(err: unknown): boolean {
  if (!(err instanceof GatewayError)) return false;
  return err.code === 'state_conflict' || /has been disabled/.test(err.extras.agentDesc ?? '');
}

/** Counts the bytes that cross the agent (the metrics). */
export interface FileTransferObserver {
  read(bytes: number): void;
  written(bytes: number): void;
}

export class GuestFileService {
  /** Told of every chunk read or written; set by observeTransfers(). */
  transfers: FileTransferObserver | null = null;
  /** Open handles per domain UUID. */
  private readonly open = new Map<string, Set<GuestFile>>();
  private _stopping = false;

  /** Set at shutdown: no new opens, no background close retries. */
  get stopping(): boolean {
    return this._stopping;
  }

  observeTransfers(observer: FileTransferObserver): void {
    this.transfers = observer;
  }

  constructor(
    readonly agent: AgentService,
    readonly config: Config['files'],
    readonly log: Logger,
  ) {}

  /** Opens a guest file; the caller must close() it on every path (the registry closes it at shutdown otherwise). */
  async openFile(dom: DomainRef, path: string, mode: FileOpenMode, opts: OpenOptions = {}): Promise<GuestFile> {
    if (this._stopping) throw new GatewayError('shutting_down', 'the gateway is shutting down', { domain: dom.name });
    // An agent that may open but not write (guest-file-write blocked) would have the file created or truncated
    // before the first write is refused: 501 before anything is opened.
    if (mode !== 'r') await this.agent.ensureSupported(dom, 'guest-file-write', { timeoutMs: opts.timeoutMs ?? this.config.chunkTimeoutMs, onCommand: opts.onCommand });
    let handle: number;
    try {
      // Not aborted by the client leaving: an open abandoned in flight would still open a handle in the guest,
      // and its number would be lost. The check below closes it instead.
      handle = await this.agent.execute(dom, guestFileOpen, { path, mode }, { timeoutMs: opts.timeoutMs ?? this.config.chunkTimeoutMs, onCommand: opts.onCommand });
    } catch (err) {
      throw mapFileError(err, path);
    }
    const file = new GuestFile(this, dom, path, handle, opts);
    let set = this.open.get(domainKey(dom));
    if (!set) this.open.set(domainKey(dom), (set = new Set()));
    set.add(file);
    // Opened while the gateway began to stop, or after the client left: do not keep it.
    if (this.stopping || opts.signal?.aborted) {
      await file.close();
      if (this.stopping) throw new GatewayError('shutting_down', 'the gateway is shutting down', { domain: dom.name });
      throw new GatewayError('client_gone', 'the client went away', { domain: dom.name });
    }
    return file;
  }

  /** Handles open now, per domain name (for tests and diagnostics). */
  openHandles(): { domain: string; handle: number; path: string }[] {
    return [...this.open.values()].flatMap((s) => [...s].map((f) => ({ domain: f.dom.name, handle: f.handle, path: f.path })));
  }

  forget(file: GuestFile): void {
    const set = this.open.get(domainKey(file.dom));
    set?.delete(file);
    if (set?.size === 0) this.open.delete(domainKey(file.dom));
  }

  /**
   * Before the HTTP server waits for requests in flight: stops every transfer and makes its close attempt (a close
   * refused while frozen keeps retrying until close() below, which runs after the gateway thawed its freezes).
   */
  async abortTransfers(timeoutMs: number): Promise<void> {
    const files = [...this.open.values()].flatMap((s) => [...s]);
    if (files.length === 0) return;
    this.log.info({ handles: files.length }, 'closing guest file handles of transfers still running');
    const reason = new GatewayError('shutting_down', 'the gateway is shutting down');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(files.map((f) => f.abortTransfer(reason))), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * Shutdown: refuses new opens, stops every transfer and closes every handle (while the agent queue still takes
   * commands). Resolves true when all closed within timeoutMs.
   */
  async close(timeoutMs: number): Promise<boolean> {
    this._stopping = true;
    const files = [...this.open.values()].flatMap((s) => [...s]);
    if (files.length === 0) return true;
    this.log.info({ handles: files.length }, 'closing guest file handles of transfers still running');
    const reason = new GatewayError('shutting_down', 'the gateway is shutting down');
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(files.map(async (f) => {
      await f.abortTransfer(reason);
      await f.finalClose();
    })).then(() => true);
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
