// Opening and closing the unix socket of a guest agent: a connect() bounded by a timeout, the caller's signal
// and a cancel (the channel closing), and a hang-up that lets the agent close first.
import net from 'node:net';
import { AgentSocketError } from './errors.js';

const HANGUP_GRACE_MS = 500;

/** Why a dial failed; countsAsFailure: the socket refused or timed out (back off), rather than the caller giving up. */
export class DialFailure {
  constructor(
    readonly error: unknown,
    readonly countsAsFailure: boolean,
  ) {}
}

/** Connects to the socket at path. socket rejects with a DialFailure; cancel(err) gives up at once. */
export function dial(path: string, timeoutMs: number, signal: AbortSignal): { socket: Promise<net.Socket>; cancel(err: unknown): void } {
  let cancel: (err: unknown) => void = () => {};
  const socket = new Promise<net.Socket>((resolve, reject) => {
    const s = net.createConnection({ path });
    // A destroyed socket may still report an error after we stopped listening: never let that crash the process.
    s.on('error', () => {});
    let settled = false;
    const finish = (err: unknown, countsAsFailure: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      s.off('connect', onConnect);
      s.off('error', onError);
      if (err === null) return resolve(s);
      s.destroy();
      reject(new DialFailure(err, countsAsFailure));
    };
    const onConnect = () => finish(null, false);
    const onError = (err: NodeJS.ErrnoException) => finish(connectError(path, err), true);
    const onAbort = () => finish(signal.reason, false);
    const timer = setTimeout(
      () => finish(new AgentSocketError('not_connected', `connecting to the agent socket ${path} took longer than ${timeoutMs} ms`), true),
      timeoutMs,
    );
    cancel = (err) => finish(err, false);
    s.once('connect', onConnect);
    s.once('error', onError);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return { socket, cancel: (err) => cancel(err) };
}

/**
 * Half-closes and keeps reading (and discarding) until the agent hangs up, destroying only after a grace period:
 * qemu-ga 7.2 in unix-listen mode exits when its client disconnects with reply bytes still unread.
 */
export function hangUp(socket: net.Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => socket.destroy(), HANGUP_GRACE_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
  });
}

export function connectError(path: string, err: NodeJS.ErrnoException): AgentSocketError {
  if (err.code === 'EAGAIN') {
    // A unix socket's backlog is full: clients are queued behind the one being served.
    return new AgentSocketError('busy', `the agent socket ${path} has a full backlog: other clients hold it`);
  }
  const why =
    err.code === 'ENOENT'
      ? 'no such socket (the VM is not running, or its agent channel is elsewhere)'
      : err.code === 'ECONNREFUSED'
        ? 'nothing is listening on it'
        : err.code === 'EACCES'
          ? 'permission denied'
          : (err.code ?? err.message);
  return new AgentSocketError('not_connected', `cannot connect to the agent socket ${path}: ${why}`);
}
