// Getting a connection back in step with the agent, following qga/qapi-schema.json: 0xFF (it resets the agent's
// JSON parser, which may hold the unfinished command of a client long gone), then guest-sync-delimited with a fresh
// random id, discarding everything up to the 0xFF the agent puts before {"return": id}. Also the plain sync the
// diagnosis route sends, without the 0xFF, to report what it finds before its answer.
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { classify, countDiscarded, type AgentConnection, type Tally } from './connection.js';
import { AgentSocketError } from './errors.js';
import { SENTINEL } from './reply-splitter.js';

export type SyncCommand = 'guest-sync' | 'guest-sync-delimited';

/** What a guest-sync / guest-sync-delimited round trip found: for diagnosing a channel (both agent transports report it). */
export interface SyncReport {
  command: SyncCommand;
  id: number;
  /** From the first byte written to the answer (over a socket, a fallback resynchronisation of the sync included). */
  roundTripMs: number;
  /** The first reply read answered this id: nothing stale or garbled was waiting on the channel. */
  inStep: boolean;
  discardedBytes: number;
  staleReplies: number;
}

export interface SyncLimits {
  /** The socket, for messages. */
  path: string;
  /** One sync may take this long. */
  syncTimeoutMs: number;
}

let lastId = -1;
/** A fresh id for guest-sync(-delimited): random (crypto) in 0..2^31-1, never the previous one. */
export function freshSyncId(): number {
  let id: number;
  do id = randomInt(0, 2 ** 31);
  while (id === lastId);
  lastId = id;
  return id;
}

const answers = (value: Record<string, unknown>, id: number) => value.return === id;

/** 0xFF + guest-sync-delimited, then discard up to the 0xFF that precedes {"return": id}. Leaves the connection in step. */
export async function resynchronise(conn: AgentConnection, signal: AbortSignal, limits: SyncLimits): Promise<SyncReport> {
  const id = freshSyncId();
  const tally = conn.takeIdleTally();
  let heardAnything = false;
  // qemu-ga answers our stray 0xFF with an error reply just before the answer: that one is expected, not stale.
  let lastWasErrorReply = false;
  const started = performance.now();
  const answered = conn.wait<void>(
    signal,
    (frame, settle) => {
      heardAnything = true;
      if (frame.type === 'overflow') return;
      const c = frame.type === 'line' ? classify(frame.bytes) : undefined;
      if (frame.type === 'line' && frame.delimited && c?.kind === 'reply' && answers(c.value, id)) {
        if (lastWasErrorReply) tally.staleReplies -= 1;
        conn.markInStep();
        settle.resolve();
        return;
      }
      lastWasErrorReply = frame.type === 'line' && !frame.delimited && c?.kind === 'reply' && 'error' in c.value;
      countDiscarded(tally, frame, c);
    },
    {
      ms: limits.syncTimeoutMs,
      fire: (settle) => {
        conn.inStep = false;
        settle.reject(silence(conn, heardAnything, 'guest-sync-delimited', limits));
      },
    },
  );
  conn.socket.write(Buffer.concat([Buffer.of(SENTINEL), syncLine('guest-sync-delimited', id)]));
  try {
    await answered;
  } catch (err) {
    conn.syncFailed = !(err instanceof AgentSocketError && err.code === 'closed') && !signal.aborted;
    throw err;
  }
  return {
    command: 'guest-sync-delimited',
    id,
    roundTripMs: round(performance.now() - started),
    inStep: tally.discardedBytes === 0 && tally.staleReplies === 0,
    ...tally,
  };
}

/** One sync command, no 0xFF; resolves {found: false} (nothing thrown) when its answer does not come in time. */
export function askSync(
  conn: AgentConnection,
  command: SyncCommand,
  id: number,
  tally: Tally,
  signal: AbortSignal,
  limits: SyncLimits,
): Promise<{ found: boolean; first: boolean }> {
  let first = true;
  const p = conn.wait<{ found: boolean; first: boolean }>(
    signal,
    (frame, settle) => {
      if (frame.type === 'overflow') return;
      const c = frame.type === 'line' ? classify(frame.bytes) : undefined;
      if (c?.kind === 'reply' && answers(c.value, id)) {
        conn.markInStep();
        settle.resolve({ found: true, first });
        return;
      }
      countDiscarded(tally, frame, c);
      first = false;
    },
    { ms: limits.syncTimeoutMs, fire: (settle) => settle.resolve({ found: false, first: false }) },
  );
  conn.socket.write(syncLine(command, id));
  return p;
}

/** No answer to a sync in time: busy (nothing ever heard on a fresh socket) or unresponsive. */
function silence(conn: AgentConnection, heardAnything: boolean, command: SyncCommand, limits: SyncLimits): AgentSocketError {
  const ms = limits.syncTimeoutMs;
  if (!conn.everSynced && !heardAnything) {
    return new AgentSocketError(
      'busy',
      `connected to ${limits.path}, but no answer to ${command} within ${ms} ms: another client holds the socket ` +
        '(qemu-ga and QEMU accept one client at a time and leave later ones waiting unaccepted), ' +
        'or the guest agent is not running in the guest',
    );
  }
  return new AgentSocketError('unresponsive', `the guest agent did not answer ${command} within ${ms} ms`);
}

function syncLine(command: SyncCommand, id: number): Buffer {
  return Buffer.from(`${JSON.stringify({ execute: command, arguments: { id } })}\n`, 'utf8');
}

export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
