// src/agent/files: guest files through the agent's guest-file-* commands. This file opens them and keeps the
// registry of the handles open right now, so that a handle is closed on every path: success, error, deadline,
// client gone, gateway shutdown; guest-file.ts is one open handle, file-read-stream.ts a download, file-upload.ts
// the writes of an upload, uploads.ts an upload whole (atomic: a temporary file, upload-temp.ts, renamed over the
// target by a guest program, replace-commands.ts; recovered after a crash, upload-recovery.ts), and guest-path.ts
// the one rule for a guest path.
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { guestFileOpen, guestFileWrite, type FileOpenMode } from '../commands/files.js';
import { GuestFile, mapFileError, type FileTransferObserver, type GuestFileOwner, type OpenOptions } from './guest-file.js';
import type { AgentService } from '../core/service.js';
import { domainKey, signalOf, type DomainRef } from '../../domains/vocabulary.js';

export class GuestFileService implements GuestFileOwner {
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
    const callOpts = { timeoutMs: opts.timeoutMs ?? this.config.chunkTimeoutMs, onCommand: opts.onCommand };
    if (mode !== 'r') await this.agent.ensureSupported(dom, guestFileWrite.execute, callOpts);
    let handle: number;
    try {
      // Not aborted by the client leaving: an open abandoned in flight would still open a handle in the guest,
      // and its number would be lost. The check below closes it instead.
      handle = await this.agent.execute(dom, guestFileOpen, { path, mode }, callOpts);
    } catch (err) {
      throw mapFileError(err, path);
    }
    const file = new GuestFile(this, dom, path, handle, opts);
    let set = this.open.get(domainKey(dom));
    if (!set) {
      set = new Set();
      this.open.set(domainKey(dom), set);
    }
    set.add(file);
    // Opened while the gateway began to stop, or after the client left: do not keep it.
    if (this.stopping || signalOf(opts.signal)?.aborted) {
      await file.close();
      if (this.stopping) throw new GatewayError('shutting_down', 'the gateway is shutting down', { domain: dom.name });
      throw new GatewayError('client_gone', 'the client went away', { domain: dom.name });
    }
    return file;
  }

  /** Handles open now, per domain name: the registry as it stands, which the tests read to prove every path closes its handle (no route shows it). */
  openHandles(): { domain: string; handle: number; path: string }[] {
    return [...this.open.values()].flatMap((s) => [...s].map((f) => ({ domain: f.dom.name, handle: f.handle, path: f.path })));
  }

  /** Whether one of this gateway's transfers holds the handle: nobody else may touch it. */
  holds(dom: DomainRef, handle: number): boolean {
    return [...(this.open.get(domainKey(dom)) ?? [])].some((f) => f.handle === handle);
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
    await this.forEachOpen(timeoutMs, (f, reason) => f.abortTransfer(reason));
  }

  /**
   * Shutdown: refuses new opens, stops every transfer and closes every handle (while the agent queue still takes
   * commands). Resolves true when all closed within timeoutMs.
   */
  async close(timeoutMs: number): Promise<boolean> {
    this._stopping = true;
    return this.forEachOpen(timeoutMs, async (f, reason) => {
      await f.abortTransfer(reason);
      await f.finalClose();
    });
  }

  /** Runs `each` on every open handle at once; true when all finished within timeoutMs. */
  private async forEachOpen(timeoutMs: number, each: (file: GuestFile, reason: GatewayError) => Promise<void>): Promise<boolean> {
    const files = [...this.open.values()].flatMap((s) => [...s]);
    if (files.length === 0) return true;
    this.log.info({ handles: files.length }, 'closing guest file handles of transfers still running');
    const reason = new GatewayError('shutting_down', 'the gateway is shutting down');
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(files.map((f) => each(f, reason))).then(() => true);
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
