// One open connection to a guest agent's socket: who waits for the agent's bytes, and what arrives when nobody does.
// The agent protocol has no request ids, so at most one operation waits at a time (the channel's turns see to
// that) and every frame goes to it; a frame nobody asked for puts the connection out of step, and is tallied for
// the next resynchronisation's report.
import type net from 'node:net';
import type { Logger } from 'pino';
import { hangUp } from './dial.js';
import { AgentSocketError } from './errors.js';
import { ReplySplitter, type Frame } from './reply-splitter.js';

export const closedError = () => new AgentSocketError('closed', 'the agent channel is closed');
const notConnected = (message: string) => new AgentSocketError('not_connected', message);

export interface Settle<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

/** The one operation waiting for the agent's bytes: every frame goes to it. */
interface Waiter {
  onFrame(frame: Frame): void;
  fail(err: unknown): void;
}

/** What came that was not the awaited answer. */
export interface Tally {
  discardedBytes: number;
  staleReplies: number;
}

export type Classified = { kind: 'reply'; value: Record<string, unknown> } | { kind: 'blank' } | { kind: 'garbage' };

export function classify(bytes: Buffer): Classified {
  const text = bytes.toString('utf8');
  if (text.trim() === '') return { kind: 'blank' };
  try {
    // Read here only for its shape ("return"/"error", a sync id below 2^31): the reply text itself goes to the agent
    // service, which parses it without rounding 64-bit integers (src/agent/transports/agent-json.ts).
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      return { kind: 'reply', value: value as Record<string, unknown> };
    }
  } catch {
    // not JSON: garbage
  }
  return { kind: 'garbage' };
}

/** Counts a frame that was not the awaited answer: a JSON reply is stale, anything else discarded bytes (newline included). */
export function countDiscarded(tally: Tally, frame: Frame, classified?: Classified): void {
  if (frame.type === 'overflow') return;
  if (frame.type === 'dropped') tally.discardedBytes += frame.bytes;
  else if ((classified ?? classify(frame.bytes)).kind === 'reply') tally.staleReplies += 1;
  else tally.discardedBytes += frame.bytes.length + 1;
}

export class AgentConnection {
  /** The next reply read will be the answer to the next command written. */
  inStep = false;
  /** A resynchronisation succeeded on this socket: from then on silence means "unresponsive", not "busy". */
  everSynced = false;
  /** The last resynchronisation on this socket failed (the channel's state then reads 'disconnected'). */
  syncFailed = false;
  /** The socket has closed. */
  closed = false;
  /** The channel is closing: waits and writes fail with shutting_down rather than agent_not_connected. */
  private shutDown = false;
  private waiter: Waiter | null = null;
  /** Discarded while nothing waited: reported by the next resynchronisation or sync(). */
  private idle: Tally = { discardedBytes: 0, staleReplies: 0 };
  private readonly splitter: ReplySplitter;

  constructor(
    readonly socket: net.Socket,
    private readonly maxReplyBytes: number,
    private readonly log: Logger,
  ) {
    this.splitter = new ReplySplitter(maxReplyBytes, (frame) => this.onFrame(frame));
    socket.on('data', (chunk: Buffer) => this.splitter.feed(chunk));
  }

  takeIdleTally(): Tally {
    const t = this.idle;
    this.idle = { discardedBytes: 0, staleReplies: 0 };
    return t;
  }

  /**
   * Called from a frame handler at the moment a sync answer is read, not after the awaiting code resumes: frames
   * later in the same chunk are handled before that, and if they are unsolicited they must be able to undo it.
   */
  markInStep(): void {
    this.inStep = true;
    this.everSynced = true;
    this.syncFailed = false;
  }

  /** The socket closed under us: whoever waits hears it. */
  lost(): void {
    this.closed = true;
    this.inStep = false;
    this.waiter?.fail(this.shutDown ? closedError() : notConnected('the agent socket was closed while waiting for an answer'));
  }

  /** The channel closes: whoever waits hears it, and the socket is hung up (letting the agent close first). */
  shut(): Promise<void> {
    this.shutDown = true;
    this.waiter?.fail(closedError());
    return this.closed ? Promise.resolve() : hangUp(this.socket);
  }

  /**
   * Installs the waiter for the next frames (before anything is written, so no answer can slip past it). Rejects when
   * the socket closes or the signal aborts (the connection is then out of step); on timeout, `timeout.fire` decides.
   */
  wait<T>(
    signal: AbortSignal,
    handle: (frame: Frame, settle: Settle<T>) => void,
    timeout?: { ms: number; fire: (settle: Settle<T>) => void },
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.shutDown) {
        reject(closedError());
        return;
      }
      if (this.closed) {
        reject(notConnected('the agent socket is closed'));
        return;
      }
      if (signal.aborted) {
        this.inStep = false;
        reject(signal.reason);
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        if (this.waiter !== waiter) return;
        this.waiter = null;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        fn();
      };
      const settle: Settle<T> = {
        resolve: (v) => finish(() => resolve(v)),
        reject: (e) => finish(() => reject(e)),
      };
      const waiter: Waiter = {
        onFrame: (frame) => handle(frame, settle),
        fail: (err) => {
          this.inStep = false;
          settle.reject(err);
        },
      };
      const onAbort = () => waiter.fail(signal.reason);
      this.waiter = waiter;
      signal.addEventListener('abort', onAbort, { once: true });
      if (timeout) timer = setTimeout(() => timeout.fire(settle), timeout.ms);
    });
  }

  /** Writes a command and resolves with the next reply: its answer. */
  request(line: Buffer, signal: AbortSignal): Promise<string> {
    const max = this.maxReplyBytes;
    const reply = this.wait<string>(signal, (frame, settle) => {
      if (frame.type === 'line') {
        const c = classify(frame.bytes);
        if (c.kind === 'blank') return;
        if (c.kind === 'reply') {
          settle.resolve(frame.bytes.toString('utf8'));
          return;
        }
      }
      this.inStep = false;
      if (frame.type === 'overflow') {
        this.log.warn({ maxReplyBytes: max }, 'agent reply too large; refused, resynchronising before the next command');
        settle.reject(new AgentSocketError('reply_too_large', `the agent's reply was longer than ${max} bytes and was refused`));
      } else {
        this.log.warn('agent reply is not JSON; resynchronising before the next command');
        settle.reject(new AgentSocketError('reply_invalid', 'the agent sent a reply that is not a JSON object'));
      }
    });
    this.socket.write(line);
    return reply;
  }

  /** Writes and waits until the bytes are handed to the kernel (for commands that never answer). */
  flush(data: Buffer, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.socket.write(data, (err) => {
        signal.removeEventListener('abort', onAbort);
        if (err) reject(this.shutDown ? closedError() : notConnected('the agent socket closed while the command was written'));
        else resolve();
      });
    });
  }

  private onFrame(frame: Frame): void {
    if (this.waiter) {
      this.waiter.onFrame(frame);
      return;
    }
    // Nothing was asked: whatever this is, the next reply can no longer be trusted to be the next answer.
    if (frame.type === 'overflow') return;
    const wasInStep = this.inStep;
    this.inStep = false;
    countDiscarded(this.idle, frame);
    if (wasInStep && !this.shutDown) this.log.warn('unsolicited data from the agent; resynchronising before the next command');
  }
}
