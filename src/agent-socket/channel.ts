// A guest agent reached directly on its unix socket, without libvirt: a QEMU chardev server socket (Proxmox keeps them
// as /var/run/qemu-server/VMID.qga) or qemu-ga itself in unix-listen mode.
//
// The protocol has no request ids: one client, one command at a time, a reply is the next newline-terminated JSON
// object. So the channel must know when the stream is "in step" (the next reply is the answer to the next command)
// and restore that whenever it may not be: on a new connection (a previous client, or a command of ours that timed
// out, may still have an answer on the way) and after any abort, garbage, oversized reply or command that never
// answers. Restoring it (resync.ts) writes 0xFF, which resets the agent's JSON parser (the parser outlives
// connections), then guest-sync-delimited with a fresh random id, and discards everything up to the answer.
//
// Failure classes (errors.ts): nobody listening (not_connected, with a jittered backoff between attempts);
// connected but not one byte back to the resynchronisation on a fresh connection (busy: qemu-ga and QEMU's chardev
// accept one client and leave later ones unaccepted in the backlog, where connect() still succeeds); an established
// channel that stops answering (unresponsive).
//
// The socket is never closed on an error, only resynchronised, and close() half-closes and lets the agent hang up
// first: qemu-ga 7.2 in unix-listen mode exits when its client disconnects with reply bytes still unread
// (ECONNRESET on its read), so a destroy() with an answer in flight would take the agent down.
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Backoff } from './backoff.js';
import { AgentConnection, closedError } from './connection.js';
import { dial, type DialFailure } from './dial.js';
import { AgentSocketError } from './errors.js';
import { askSync, freshSyncId, resynchronise, round, type SyncCommand, type SyncReport } from './resync.js';
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

/** One definition of the sync report for both agent transports (src/agent/transports/transport.ts). */
export type { SyncReport, SyncCommand };

export type ChannelState = 'connected' | 'connecting' | 'disconnected';

/** Unsolicited data right after a successful resynchronisation sends the channel round again, this many times. */
const MAX_RESYNC_ROUNDS = 3;

export class AgentSocketChannel {
  private readonly log: Logger;
  private readonly backoff = new Backoff();
  private conn: AgentConnection | null = null;
  private connecting: { fail(err: unknown): void } | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  /**
   * One operation on the socket at a time, first come first served, whoever calls: the agent service's per-domain
   * queue orders its own calls, but keeping the stream whole is the channel's job (sync, resync and direct users).
   */
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
   * not counted), and how long it took. null before any. The tests read it; the channel logs the same at each one.
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
        await conn.flush(line, opts.signal);
        return null;
      }
      return await conn.request(line, opts.signal);
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
      throw new AgentSocketError('bad_command', `not a sync command: ${String(command)}`);
    }
    await this.takeTurn(opts.signal);
    try {
      const conn = this.conn ?? (await this.connect(opts.signal));
      const started = performance.now();
      const tally = conn.takeIdleTally();
      let id = freshSyncId();
      let answer = await askSync(conn, command, id, tally, opts.signal, this.opts);
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
        answer = await askSync(conn, command, id, tally, opts.signal, this.opts);
        if (!answer.found) {
          conn.inStep = false;
          throw new AgentSocketError('unresponsive', `the agent answered the resynchronisation but not ${command}`);
        }
      }
      return { command, id, roundTripMs: round(performance.now() - started), inStep, ...tally };
    } finally {
      this.turns.release();
    }
  }

  /** Closes the socket; pending and later calls reject with AgentSocketError('closed'). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.turns.refuseAll(closedError);
    this.connecting?.fail(closedError());
    const conn = this.conn;
    this.conn = null;
    this.closing = conn ? conn.shut() : Promise.resolve();
    return this.closing;
  }

  private takeTurn(signal: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    return this.turns.take(signal);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Connecting

  /** An open connection, in step. */
  private async ready(signal: AbortSignal): Promise<AgentConnection> {
    const conn = this.conn ?? (await this.connect(signal));
    for (let round = 0; !conn.inStep; round++) {
      if (round === MAX_RESYNC_ROUNDS) {
        throw new AgentSocketError('unresponsive', 'the agent keeps sending data nobody asked for');
      }
      await this.resync(conn, signal);
    }
    return conn;
  }

  private async connect(signal: AbortSignal): Promise<AgentConnection> {
    if (this.closed) throw closedError();
    const waitMs = this.backoff.remainingMs();
    if (waitMs > 0) {
      throw new AgentSocketError(
        'not_connected',
        `the agent socket ${this.opts.path} is not accepting connections (${this.backoff.lastFailure}); next attempt in ${waitMs} ms`,
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
        const reason = error instanceof AgentSocketError ? error.message : String(error);
        this.log.debug({ err: reason, backoffMs: this.backoff.failed(reason) }, 'agent socket connect failed');
      }
      throw error;
    } finally {
      this.connecting = null;
    }
  }

  private adopt(socket: net.Socket): AgentConnection {
    const conn = new AgentConnection(socket, this.opts.maxReplyBytes, this.log);
    this.conn = conn;
    socket.on('error', (err: NodeJS.ErrnoException) => this.log.debug({ code: err.code }, 'agent socket error'));
    socket.once('close', () => {
      conn.lost();
      if (this.conn !== conn) return;
      this.conn = null;
      this.log.info('agent socket closed by the other side');
    });
    this.log.debug('agent socket connected');
    return conn;
  }

  /** Resynchronises, and keeps the report for `lastResync`. */
  private async resync(conn: AgentConnection, signal: AbortSignal): Promise<SyncReport> {
    const report = await resynchronise(conn, signal, this.opts);
    this.lastResyncReport = report;
    const { roundTripMs, discardedBytes, staleReplies } = report;
    if (report.inStep) this.log.debug({ roundTripMs }, 'agent channel resynchronised');
    else this.log.info({ discardedBytes, staleReplies, roundTripMs }, 'agent channel resynchronised; discarded what came before');
    return report;
  }
}

function checkCommandText(json: string): void {
  // One command per line is the framing: a newline inside would end it early (JSON.stringify never emits one).
  if (json.includes('\n')) throw new AgentSocketError('bad_command', 'an agent command must not contain a newline');
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new AgentSocketError('bad_command', 'an agent command must be JSON');
  }
  // Anything else would leave the agent's parser waiting for the rest, swallowing the next command.
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new AgentSocketError('bad_command', 'an agent command must be a JSON object');
  }
}
