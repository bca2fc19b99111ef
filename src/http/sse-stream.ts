// One Server-Sent Events response, framed here rather than with @fastify/sse: the stream must measure what it has
// written and the client not yet taken, and drop a client past a bound (@fastify/sse waits for 'drain' on each
// message, which leaves the queueing, unbounded, to the caller; its heartbeat writes ignore backpressure), and its
// heartbeat must be the contract's `: keep-alive`. The body is a Readable handed to Fastify, so that the app's hooks
// (request id, request log line, metrics) see the request as any other.
//
// What the client has not taken yet is the Readable's buffer plus the response's and its socket's (writableLength).
// Past `maxQueuedBytes` the stream ends with an `overflow` event; at shutdown with a `closing` event. Either way a
// client that still does not read is cut off after `graceMs`: the gateway's close never waits for it.
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

export interface SseOptions {
  maxQueuedBytes: number;
  heartbeatMs: number;
  /** How long an ended stream may take to flush before its socket is destroyed. */
  graceMs: number;
  /** How long EventSource waits before reconnecting (the `retry:` field). */
  retryMs: number;
  /** Runs once, however the stream ends (ended here, client gone, socket destroyed). */
  onClosed: () => void;
  /** Told when the stream ends for a client too slow, with why. */
  onOverflow?: (reason: string) => void;
}

export type EndReason = 'overflow' | 'closing';

export class SseStream {
  readonly body = new Readable({ read() {} });
  private position = '';
  private ended = false;
  private closed = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private grace: NodeJS.Timeout | null = null;
  /** The most bytes ever waiting for this client: what the tests check the bound with. */
  peakQueuedBytes = 0;

  constructor(
    private readonly raw: ServerResponse,
    private readonly opts: SseOptions,
  ) {
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), opts.heartbeatMs);
    const closed = () => this.cleanUp();
    raw.once('close', closed);
    this.body.once('close', closed);
  }

  /** Bytes written and not yet taken by the client. */
  get queuedBytes(): number {
    return this.body.readableLength + this.raw.writableLength;
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  /**
   * The stream's first lines: the reconnection delay, and its position as an `id:` alone, which sets EventSource's
   * last event id without dispatching an event, so that a client reconnecting later resumes from here.
   */
  start(position: string): void {
    this.position = position;
    this.write(`retry: ${this.opts.retryMs}\nid: ${position}\n\n`);
  }

  /**
   * One event; false when the stream is over (ended, or just now for being too slow). A replay (what a resuming
   * client missed, at most events.bufferSize events) is not held against the bound: nothing could have been read yet.
   */
  event(id: string, type: string, json: string, replay = false): boolean {
    if (this.ended) return false;
    const frame = `id: ${id}\nevent: ${type}\ndata: ${json}\n\n`;
    if (replay) this.push(frame);
    else if (!this.write(frame)) return false;
    this.position = id;
    return true;
  }

  /** A stream's own event, at its position: `reset` first, `overflow` or `closing` last. */
  control(type: 'reset' | EndReason, reason: string): void {
    const json = JSON.stringify({ id: this.position, type, time: new Date().toISOString(), reason });
    this.push(`id: ${this.position}\nevent: ${type}\ndata: ${json}\n\n`);
  }

  /** The last event, then the end of the response; the socket is destroyed if the client has not taken it in graceMs. */
  end(type: EndReason, reason: string): void {
    if (this.ended) return;
    this.control(type, reason);
    this.ended = true;
    this.stopHeartbeat();
    this.body.push(null);
    this.grace = setTimeout(() => {
      if (!this.raw.writableFinished) this.raw.destroy();
    }, this.opts.graceMs);
  }

  /** Writes unless the client is already too far behind: then the stream ends with `overflow`. */
  private write(text: string): boolean {
    if (this.ended) return false;
    const queued = this.queuedBytes;
    if (queued > this.opts.maxQueuedBytes) {
      const reason = `the client read too slowly: ${queued} bytes were waiting for it (events.clientQueueBytes ${this.opts.maxQueuedBytes})`;
      this.end('overflow', reason);
      this.opts.onOverflow?.(reason);
      return false;
    }
    this.push(text);
    return true;
  }

  private push(text: string): void {
    this.body.push(text);
    this.peakQueuedBytes = Math.max(this.peakQueuedBytes, this.queuedBytes);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private cleanUp(): void {
    if (this.closed) return;
    this.closed = true;
    this.ended = true;
    this.stopHeartbeat();
    if (this.grace) clearTimeout(this.grace);
    this.grace = null;
    this.opts.onClosed();
  }
}
