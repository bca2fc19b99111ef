// A guest agent reached directly on its unix socket, without libvirt: a QEMU chardev server socket (Proxmox keeps them
// as /var/run/qemu-server/VMID.qga) or qemu-ga itself in unix-listen mode.
//
// The protocol has no request ids: one client, one command at a time, a reply is the next newline-terminated JSON
// object. So the channel must know when the stream is "in step" (the next reply is the answer to the next command)
// and restore that whenever it may not be: on a new connection (a previous client, or a command of ours that timed
// out, may still have an answer on the way) and after any abort, garbage, oversized reply or command that never
// answers. Restoring it follows qga/qapi-schema.json: write 0xFF (it resets the agent's JSON parser, which may hold
// the unfinished command of a client long gone: the parser outlives connections), then guest-sync-delimited with a
// fresh random id, and discard everything up to the 0xFF the agent puts before {"return": id}. qemu-ga answers the
// stray 0xFF itself with an error reply ("JSON parse error, stray '\uFFFD'"), which is discarded with the rest.
//
// Failure classes: nobody listening (agent_not_connected, with a jittered backoff between attempts); connected but
// not one byte back to the resynchronisation on a fresh connection (agent_busy: qemu-ga and QEMU's chardev accept one
// client and leave later ones unaccepted in the backlog, where connect() still succeeds); an established channel
// that stops answering (agent_unresponsive).
//
// The socket is never closed on an error, only resynchronised, and close() half-closes and lets the agent hang up
// first: qemu-ga 7.2 in unix-listen mode exits when its client disconnects with reply bytes still unread
// (ECONNRESET on its read), so a destroy() with an answer in flight would take the agent down.
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { SyncReport } from '../agent/transport.js';
import { GatewayError } from '../errors.js';
import { Backoff } from './backoff.js';
import { dial, DialFailure, hangUp, RETRY_AFTER_S } from './dial.js';
import { ReplySplitter, SENTINEL, type Frame } from './reply-splitter.js';
import { Turns } from './turns.js';

export interface AgentChannelOptions {
  /** The unix socket (QEMU chardev server, or qemu-ga -m unix-listen). */
  path: string;
  /** connect() */
  connectTimeoutMs: number;
  /** One resynchronisation (0xFF + guest-sync-delimited) may take this long. */
  syncTimeoutMs: number;
  /** A reply (or garbage run) longer than this is refused and the channel resynchronised. */
  maxReplyBytes: number;
  log: Logger;
}

/** One definition of the sync report for both transports (src/agent/transport.ts). */
export type { SyncReport };
export type SyncCommand = SyncReport['command'];

export type ChannelState = 'connected' | 'connecting' | 'disconnected';

/** How long close() lets the agent hang up after our half-close before the socket is destroyed. */
/** Unsolicited data right after a successful resynchronisation sends the channel round again, this many times. */
const MAX_RESYNC_ROUNDS = 3;

interface Settle<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

/** The one operation waiting for the agent's bytes: every frame goes to it, or, when none waits, counts as unsolicited. */
interface Waiter {
  onFrame(frame: Frame): void;
  fail(err: unknown): void;
}

interface Tally {
  discardedBytes: number;
  staleReplies: number;
}

class Connection {
  /** The next reply read will be the answer to the next command written. */
  inStep = false;
  /** A resynchronisation succeeded on this socket: from then on silence means "unresponsive", not "busy". */
  everSynced = false;
  /** The last resynchronisation on this socket failed (the state then reads 'disconnected'). */
  syncFailed = false;
  closed = false;
  waiter: Waiter | null = null;
  /** Discarded while nothing waited: reported by the next resynchronisation or sync(). */
  idle: Tally = { discardedBytes: 0, staleReplies: 0 };
  readonly splitter: ReplySplitter;

  constructor(
    readonly socket: net.Socket,
    maxReplyBytes: number,
    onFrame: (conn: Connection, frame: Frame) => void,
  ) {
    this.splitter = new ReplySplitter(maxReplyBytes, (frame) => onFrame(this, frame));
  }

  takeIdleTally(): Tally {
    const t = this.idle;
    this.idle = { discardedBytes: 0, staleReplies: 0 };
    return t;
  }
}

type Classified = { kind: 'reply'; value: Record<string, unknown> } | { kind: 'blank' } | { kind: 'garbage' };

function classify(bytes: Buffer): Classified {
  const text = bytes.toString('utf8');
  if (text.trim() === '') return { kind: 'blank' };
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      return { kind: 'reply', value: value as Record<string, unknown> };
    }
  } catch {
    // not JSON: garbage
  }
  return { kind: 'garbage' };
}

const answers = (value: Record<string, unknown>, id: number) => value['return'] === id;

/**
 * Called from the frame handler at the moment the sync answer is read, not after the awaiting code resumes: frames
 * later in the same chunk are handled before that, and if they are unsolicited they must be able to undo it.
 */
function markInStep(conn: Connection): void {
  conn.inStep = true;
  conn.everSynced = true;
  conn.syncFailed = false;
}

let lastId = -1;
/** A fresh id for guest-sync(-delimited): random (crypto) in 0..2^31-1, never the previous one. */
function freshSyncId(): number {
  let id: number;
  do id = randomInt(0, 2 ** 31);
  while (id === lastId);
  lastId = id;
  return id;
}

const closedError = () => new GatewayError('shutting_down', 'the agent channel is closed');

export class AgentSocketChannel {
  private readonly log: Logger;
  private readonly backoff = new Backoff();
  private conn: Connection | null = null;
  private connecting: { fail(err: unknown): void } | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  /** One operation on the socket at a time, first come first served. */
  private readonly turns = new Turns();
  private lastResyncReport: SyncReport | null = null;

  constructor(private readonly opts: AgentChannelOptions) {
    this.log = opts.log.child({ agentSocket: opts.path });
  }

  get state(): ChannelState {
    if (this.closed) return 'disconnected';
    if (this.conn) {
      if (this.conn.inStep) return 'connected';
      return this.conn.syncFailed ? 'disconnected' : 'connecting';
    }
    return this.connecting ? 'connecting' : 'disconnected';
  }

  /**
   * The last resynchronisation the channel made by itself: what it discarded before the answer (bytes discarded while
   * out of step and idle included; the agent's error reply to our own 0xFF, right before the answer, is expected and
   * not counted), and how long it took. null before any.
   */
  get lastResync(): SyncReport | null {
    return this.lastResyncReport;
  }

  /**
   * One command (JSON text without newline). Resolves with the reply's JSON text ({"return":..} or {"error":..}), or
   * null at once when expectReply is false (guest-shutdown, guest-suspend-*): the channel then resynchronises before
   * the next command. Rejects with signal.reason when the signal aborts, and the channel is then out of step: the late
   * reply is discarded by the next resynchronisation. One command at a time; calls wait their turn (FIFO, abortable).
   */
  async command(json: string, opts: { signal: AbortSignal; expectReply?: boolean }): Promise<string | null> {
    checkCommandText(json);
    await this.takeTurn(opts.signal);
    try {
      const conn = await this.ready(opts.signal);
      const line = Buffer.from(`${json}\n`, 'utf8');
      if (opts.expectReply === false) {
        // Out of step from here on: on success the agent never answers, on failure it answers with an error nobody
        // waits for, and the guest may be gone by the next command.
        conn.inStep = false;
        await this.flush(conn, line, opts.signal);
        return null;
      }
      const reply = this.awaitReply(conn, opts.signal);
      conn.socket.write(line);
      return await reply;
    } finally {
      this.turns.release();
    }
  }

  /**
   * Diagnosis: sends guest-sync or guest-sync-delimited with a fresh random id and reports how it went. It does not
   * resynchronise first, on purpose: it reports what it finds before its answer. Leaves the channel in step.
   */
  async sync(command: SyncCommand, opts: { signal: AbortSignal }): Promise<SyncReport> {
    if (command !== 'guest-sync' && command !== 'guest-sync-delimited') {
      throw new GatewayError('invalid_request', `not a sync command: ${String(command)}`);
    }
    await this.takeTurn(opts.signal);
    try {
      const conn = this.conn ?? (await this.connect(opts.signal));
      const started = performance.now();
      const tally = conn.takeIdleTally();
      let id = freshSyncId();
      let answer = await this.askSync(conn, command, id, tally, opts.signal);
      let inStep = answer.found && answer.first && tally.discardedBytes === 0 && tally.staleReplies === 0;
      if (!answer.found) {
        // No answer at all: a previous client may have left the agent's parser inside an unfinished command, which
        // swallows ours whole. Only a 0xFF resets it: resynchronise properly (this throws when that fails too), then
        // ask once more.
        inStep = false;
        const r = await this.resync(conn, opts.signal);
        tally.discardedBytes += r.discardedBytes;
        tally.staleReplies += r.staleReplies;
        id = freshSyncId();
        answer = await this.askSync(conn, command, id, tally, opts.signal);
        if (!answer.found) {
          conn.inStep = false;
          throw new GatewayError('agent_unresponsive', `the agent answered the resynchronisation but not ${command}`, {
            retryAfter: RETRY_AFTER_S,
          });
        }
      }
      return { command, id, roundTripMs: round(performance.now() - started), inStep, ...tally };
    } finally {
      this.turns.release();
    }
  }

  /** Closes the socket; pending and later calls reject with GatewayError('shutting_down'). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.turns.refuseAll(closedError);
    this.connecting?.fail(closedError());
    const conn = this.conn;
    this.conn = null;
    this.closing = conn ? this.hangUp(conn) : Promise.resolve();
    return this.closing;
  }

  private takeTurn(signal: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    return this.turns.take(signal);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Connecting

  /** An open connection, in step. */
  private async ready(signal: AbortSignal): Promise<Connection> {
    const conn = this.conn ?? (await this.connect(signal));
    for (let round = 0; !conn.inStep; round++) {
      if (round === MAX_RESYNC_ROUNDS) {
        throw new GatewayError('agent_unresponsive', 'the agent keeps sending data nobody asked for', {
          retryAfter: RETRY_AFTER_S,
        });
      }
      await this.resync(conn, signal);
    }
    return conn;
  }

  private async connect(signal: AbortSignal): Promise<Connection> {
    if (this.closed) throw closedError();
    const waitMs = this.backoff.remainingMs();
    if (waitMs > 0) {
      throw new GatewayError(
        'agent_not_connected',
        `the agent socket ${this.opts.path} is not accepting connections (${this.backoff.lastFailure}); next attempt in ${waitMs} ms`,
        { retryAfter: RETRY_AFTER_S },
      );
    }
    const attempt = dial(this.opts.path, this.opts.connectTimeoutMs, signal);
    this.connecting = { fail: attempt.cancel };
    try {
      const socket = await attempt.socket;
      this.backoff.succeeded();
      return this.adopt(socket);
    } catch (failure) {
      const { error, countsAsFailure } = failure as DialFailure;
      if (countsAsFailure) {
        const reason = error instanceof GatewayError ? error.message : String(error);
        this.log.debug({ err: reason, backoffMs: this.backoff.failed(reason) }, 'agent socket connect failed');
      }
      throw error;
    } finally {
      this.connecting = null;
    }
  }

  private adopt(socket: net.Socket): Connection {
    const conn = new Connection(socket, this.opts.maxReplyBytes, (c, frame) => this.onFrame(c, frame));
    this.conn = conn;
    socket.on('data', (chunk: Buffer) => conn.splitter.feed(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.log.debug({ code: err.code }, 'agent socket error'));
    socket.once('close', () => this.dropped(conn));
    this.log.debug('agent socket connected');
    return conn;
  }

  private dropped(conn: Connection): void {
    conn.closed = true;
    conn.inStep = false;
    if (this.conn === conn) {
      this.conn = null;
      this.log.info('agent socket closed by the other side');
    }
    conn.waiter?.fail(
      this.closed
        ? closedError()
        : new GatewayError('agent_not_connected', 'the agent socket was closed while waiting for an answer', {
            retryAfter: RETRY_AFTER_S,
          }),
    );
  }

  private hangUp(conn: Connection): Promise<void> {
    conn.waiter?.fail(closedError());
    return conn.closed ? Promise.resolve() : hangUp(conn.socket);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Reading

  private onFrame(conn: Connection, frame: Frame): void {
    if (conn.waiter) {
      conn.waiter.onFrame(frame);
      return;
    }
    // Nothing was asked: whatever this is, the next reply can no longer be trusted to be the next answer.
    if (frame.type === 'overflow') return;
    const wasInStep = conn.inStep;
    conn.inStep = false;
    if (frame.type === 'dropped') conn.idle.discardedBytes += frame.bytes;
    else if (classify(frame.bytes).kind === 'reply') conn.idle.staleReplies += 1;
    else conn.idle.discardedBytes += frame.bytes.length + 1;
    if (wasInStep && !this.closed) this.log.warn('unsolicited data from the agent; resynchronising before the next command');
  }

  /**
   * Installs the waiter for the next frames (before anything is written, so no answer can slip past it). Rejects when
   * the socket closes or the signal aborts (the channel is then out of step); on timeout, `timeout.fire` decides.
   */
  private wait<T>(
    conn: Connection,
    signal: AbortSignal,
    handle: (frame: Frame, settle: Settle<T>) => void,
    timeout?: { ms: number; fire: (settle: Settle<T>) => void },
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) {
        reject(closedError());
        return;
      }
      if (conn.closed) {
        reject(new GatewayError('agent_not_connected', 'the agent socket is closed', { retryAfter: RETRY_AFTER_S }));
        return;
      }
      if (signal.aborted) {
        conn.inStep = false;
        reject(signal.reason);
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        if (conn.waiter !== waiter) return;
        conn.waiter = null;
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
          conn.inStep = false;
          settle.reject(err);
        },
      };
      const onAbort = () => waiter.fail(signal.reason);
      conn.waiter = waiter;
      signal.addEventListener('abort', onAbort, { once: true });
      if (timeout) timer = setTimeout(() => timeout.fire(settle), timeout.ms);
    });
  }

  /** The answer to the command about to be written: the next reply. */
  private awaitReply(conn: Connection, signal: AbortSignal): Promise<string> {
    const max = this.opts.maxReplyBytes;
    return this.wait<string>(conn, signal, (frame, settle) => {
      if (frame.type === 'line') {
        const c = classify(frame.bytes);
        if (c.kind === 'blank') return;
        if (c.kind === 'reply') {
          settle.resolve(frame.bytes.toString('utf8'));
          return;
        }
      }
      conn.inStep = false;
      if (frame.type === 'overflow') {
        this.log.warn({ maxReplyBytes: max }, 'agent reply too large; refused, resynchronising before the next command');
        settle.reject(
          new GatewayError('agent_reply_too_large', `the agent's reply was longer than ${max} bytes and was refused`),
        );
      } else {
        this.log.warn('agent reply is not JSON; resynchronising before the next command');
        settle.reject(new GatewayError('agent_reply_invalid', 'the agent sent a reply that is not a JSON object'));
      }
    });
  }

  /** 0xFF + guest-sync-delimited, then discard up to the 0xFF that precedes {"return": id}. */
  private async resync(conn: Connection, signal: AbortSignal): Promise<SyncReport> {
    const id = freshSyncId();
    const tally = conn.takeIdleTally();
    let heardAnything = false;
    // qemu-ga answers our stray 0xFF with an error reply just before the answer: that one is expected, not stale.
    let lastWasErrorReply = false;
    const started = performance.now();
    const answered = this.wait<void>(
      conn,
      signal,
      (frame, settle) => {
        heardAnything = true;
        if (frame.type === 'overflow') return;
        if (frame.type === 'dropped') {
          tally.discardedBytes += frame.bytes;
          lastWasErrorReply = false;
          return;
        }
        const c = classify(frame.bytes);
        if (c.kind === 'reply' && frame.delimited && answers(c.value, id)) {
          if (lastWasErrorReply) tally.staleReplies -= 1;
          markInStep(conn);
          settle.resolve();
          return;
        }
        lastWasErrorReply = c.kind === 'reply' && !frame.delimited && 'error' in c.value;
        if (c.kind === 'reply') tally.staleReplies += 1;
        else tally.discardedBytes += frame.bytes.length + 1;
      },
      {
        ms: this.opts.syncTimeoutMs,
        fire: (settle) => {
          conn.inStep = false;
          settle.reject(this.silence(conn, heardAnything, 'guest-sync-delimited'));
        },
      },
    );
    conn.socket.write(Buffer.concat([Buffer.of(SENTINEL), syncLine('guest-sync-delimited', id)]));
    try {
      await answered;
    } catch (err) {
      conn.syncFailed = !(err instanceof GatewayError && err.code === 'shutting_down') && !signal.aborted;
      throw err;
    }
    const report: SyncReport = {
      command: 'guest-sync-delimited',
      id,
      roundTripMs: round(performance.now() - started),
      inStep: tally.discardedBytes === 0 && tally.staleReplies === 0,
      ...tally,
    };
    this.lastResyncReport = report;
    if (report.inStep) this.log.debug({ roundTripMs: report.roundTripMs }, 'agent channel resynchronised');
    else this.log.info({ ...tally, roundTripMs: report.roundTripMs }, 'agent channel resynchronised; discarded what came before');
    return report;
  }

  /** Diagnosis: one sync command, no 0xFF; resolves {found: false} (nothing thrown) when its answer does not come. */
  private askSync(
    conn: Connection,
    command: SyncCommand,
    id: number,
    tally: Tally,
    signal: AbortSignal,
  ): Promise<{ found: boolean; first: boolean }> {
    let first = true;
    const p = this.wait<{ found: boolean; first: boolean }>(
      conn,
      signal,
      (frame, settle) => {
        if (frame.type === 'overflow') return;
        if (frame.type === 'dropped') {
          tally.discardedBytes += frame.bytes;
        } else {
          const c = classify(frame.bytes);
          if (c.kind === 'reply' && answers(c.value, id)) {
            markInStep(conn);
            settle.resolve({ found: true, first });
            return;
          }
          if (c.kind === 'reply') tally.staleReplies += 1;
          else tally.discardedBytes += frame.bytes.length + 1;
        }
        first = false;
      },
      { ms: this.opts.syncTimeoutMs, fire: (settle) => settle.resolve({ found: false, first: false }) },
    );
    conn.socket.write(syncLine(command, id));
    return p;
  }

  private silence(conn: Connection, heardAnything: boolean, command: SyncCommand): GatewayError {
    const ms = this.opts.syncTimeoutMs;
    if (!conn.everSynced && !heardAnything) {
      return new GatewayError(
        'agent_busy',
        `connected to ${this.opts.path}, but no answer to ${command} within ${ms} ms: another client holds the socket ` +
          '(qemu-ga and QEMU accept one client at a time and leave later ones waiting unaccepted), ' +
          'or the guest agent is not running in the guest',
        { retryAfter: RETRY_AFTER_S },
      );
    }
    return new GatewayError('agent_unresponsive', `the guest agent did not answer ${command} within ${ms} ms`, {
      retryAfter: RETRY_AFTER_S,
    });
  }

  /** Writes and waits until the bytes are handed to the kernel (for commands that never answer). */
  private flush(conn: Connection, data: Buffer, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      conn.socket.write(data, (err) => {
        signal.removeEventListener('abort', onAbort);
        if (err) {
          reject(
            this.closed
              ? closedError()
              : new GatewayError('agent_not_connected', 'the agent socket closed while the command was written', {
                  retryAfter: RETRY_AFTER_S,
                }),
          );
        } else resolve();
      });
    });
  }
}

function checkCommandText(json: string): void {
  // One command per line is the framing: a newline inside would end it early (JSON.stringify never emits one).
  if (json.includes('\n')) throw new GatewayError('invalid_request', 'an agent command must not contain a newline');
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new GatewayError('invalid_request', 'an agent command must be JSON');
  }
  // Anything else would leave the agent's parser waiting for the rest, swallowing the next command.
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new GatewayError('invalid_request', 'an agent command must be a JSON object');
  }
}

function syncLine(command: SyncCommand, id: number): Buffer {
  return Buffer.from(`${JSON.stringify({ execute: command, arguments: { id } })}\n`, 'utf8');
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
