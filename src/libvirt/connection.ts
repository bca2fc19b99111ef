// One socket to libvirtd: many calls in flight at once, matched to their replies by serial number.
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { ConnectionError, LibvirtError } from './errors.js';
import { type FramingError, PacketDecoder, type Packet } from './framing.js';
import { Keepalive, Remote, type CallProcedure, type MessageProcedure } from './procedures.js';
import {
  AuthType,
  DriverFeature,
  MessageStatus,
  MessageType,
  PROTOCOL_VERSION,
  Program,
  decode,
  encode,
  encodePacket,
  remoteErrorCodec,
} from './protocol.js';
import { connectTransport, describeTransport, type Transport } from './transport.js';

export type { TlsTransport, Transport } from './transport.js';

export interface ConnectionOptions {
  transport: Transport;
  /** The URI handed to CONNECT_OPEN, without the transport part (qemu:///system). */
  name: string;
  connectTimeoutMs: number;
  /** Send a keepalive PING after this much silence; 0 turns our own pings off. */
  keepaliveIntervalMs: number;
  /** Unanswered intervals after which the connection is declared dead. */
  keepaliveCount: number;
}

interface PendingCall {
  resolve(body: Buffer): void;
  reject(err: Error): void;
}

type ConnectionEvents = {
  /** An unsolicited message of the REMOTE program (domain events). */
  event: [Packet];
  /** A call left the in-flight set (its reply came): room for another. */
  callDone: [];
  close: [Error];
};

export class LibvirtConnection extends EventEmitter<ConnectionEvents> {
  private readonly decoder = new PacketDecoder();
  private readonly pending = new Map<number, PendingCall>();
  private serial = 1;
  private closed: Error | null = null;
  private lastReceived = Date.now();
  private keepaliveTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly opts: ConnectionOptions,
  ) {
    super();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.destroy(new ConnectionError(`libvirt socket error: ${err.message}`)));
    socket.on('close', () => this.destroy(new ConnectionError('connection to libvirtd closed')));
  }

  /** Connects, authenticates and opens the driver; rejects with the reason when any step fails. */
  static async open(opts: ConnectionOptions): Promise<LibvirtConnection> {
    const socket = await connectTransport(opts.transport, opts.connectTimeoutMs);
    const conn = new LibvirtConnection(socket, opts);
    try {
      const setupDeadline = AbortSignal.timeout(opts.connectTimeoutMs);
      await conn.authenticate(setupDeadline);
      await conn.call(Remote.CONNECT_OPEN, { name: opts.name, flags: 0 }, setupDeadline);
      // Declaring keepalive support makes libvirtd ping us; an unanswered ping makes it drop us.
      await conn.call(Remote.CONNECT_SUPPORTS_FEATURE, { feature: DriverFeature.PROGRAM_KEEPALIVE }, setupDeadline);
    } catch (err) {
      const why = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${opts.connectTimeoutMs} ms` : String(err);
      const reason =
        err instanceof LibvirtError || err instanceof ConnectionError
          ? err
          : new ConnectionError(`opening the connection to libvirtd at ${describeTransport(opts.transport)} failed: ${why}`);
      conn.destroy(reason);
      throw reason;
    }
    conn.startKeepalive();
    return conn;
  }

  private async authenticate(signal: AbortSignal): Promise<void> {
    const { types } = await this.call(Remote.AUTH_LIST, undefined, signal);
    if (types.length === 0 || types.includes(AuthType.NONE)) return;
    if (types.includes(AuthType.POLKIT)) {
      await this.call(Remote.AUTH_POLKIT, undefined, signal);
      return;
    }
    throw new ConnectionError(
      `libvirtd asks for an authentication method this client lacks (types ${types.join(',')}); SASL is not supported`,
    );
  }

  /** Calls in flight, including ones whose caller gave up: libvirtd still works on those. */
  get inFlight(): number {
    return this.pending.size;
  }

  get isOpen(): boolean {
    return this.closed === null;
  }

  /** Sends one call of the procedure table (procedures.ts) and answers its decoded reply. */
  call<A, R>(proc: CallProcedure<A, R>, args: A, signal?: AbortSignal): Promise<R> {
    if (this.closed) return Promise.reject(this.closed);
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const { program, procedure } = proc;
    const serial = this.nextSerial();
    const body = encode(proc.args, args);
    return new Promise<R>((resolve, reject) => {
      let settled = false;
      const onAbort = () => {
        // The reply may still come; the pending entry stays so that it is consumed and counted until then.
        settled = true;
        reject(abortReason(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(serial, {
        resolve: (replyBody) => {
          signal?.removeEventListener('abort', onAbort);
          if (settled) return;
          try {
            resolve(decode(proc.ret, replyBody));
          } catch (err) {
            reject(new ConnectionError(`malformed reply to procedure ${procedure}: ${(err as Error).message}`));
          }
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          if (!settled) reject(err);
        },
      });
      this.socket.write(
        encodePacket({ program, version: PROTOCOL_VERSION, procedure, type: MessageType.CALL, serial, status: MessageStatus.OK }, body),
      );
    });
  }

  private nextSerial(): number {
    const s = this.serial;
    this.serial = this.serial >= 0xffffffff ? 1 : this.serial + 1;
    return s;
  }

  private onData(chunk: Buffer): void {
    this.lastReceived = Date.now();
    let packets: Packet[];
    try {
      packets = this.decoder.push(chunk);
    } catch (err) {
      this.destroy(new ConnectionError(`protocol error from libvirtd: ${(err as FramingError).message}`));
      return;
    }
    for (const packet of packets) this.onPacket(packet);
  }

  private onPacket({ header, body }: Packet): void {
    if (header.program === Program.KEEPALIVE) {
      if (header.procedure === Keepalive.PING.procedure) this.sendKeepalive(Keepalive.PONG);
      return;
    }
    if (header.type === MessageType.MESSAGE) {
      this.emit('event', { header, body });
      return;
    }
    if (header.type !== MessageType.REPLY) return;
    const call = this.pending.get(header.serial);
    if (!call) return;
    this.pending.delete(header.serial);
    this.emit('callDone');
    if (header.status === MessageStatus.OK) {
      call.resolve(body);
      return;
    }
    try {
      call.reject(new LibvirtError(decode(remoteErrorCodec, body)));
    } catch {
      call.reject(new ConnectionError(`undecodable error reply to procedure ${header.procedure}`));
    }
  }

  private sendKeepalive({ program, procedure }: MessageProcedure<void>): void {
    if (this.closed) return;
    this.socket.write(
      encodePacket({ program, version: PROTOCOL_VERSION, procedure, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK }),
    );
  }

  private startKeepalive(): void {
    const { keepaliveIntervalMs: interval, keepaliveCount: count } = this.opts;
    if (interval <= 0) return;
    this.keepaliveTimer = setInterval(() => {
      const silentFor = Date.now() - this.lastReceived;
      if (silentFor >= interval * (count + 1)) {
        this.destroy(new ConnectionError(`libvirtd did not answer keepalive for ${silentFor} ms`));
      } else if (silentFor >= interval) {
        this.sendKeepalive(Keepalive.PING);
      }
    }, interval);
    this.keepaliveTimer.unref();
  }

  /** Ends the connection politely (CONNECT_CLOSE), bounded in time. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    try {
      await this.call(Remote.CONNECT_CLOSE, undefined, AbortSignal.timeout(timeoutMs));
    } catch {
      // Closing anyway.
    }
    this.destroy(new ConnectionError('connection closed by the gateway'));
  }

  /** Tears the socket down and fails every call still waiting. Idempotent. */
  destroy(reason: Error): void {
    if (this.closed) return;
    this.closed = reason;
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
    this.socket.destroy();
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) call.reject(reason);
    this.emit('close', reason);
  }
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new ConnectionError('call aborted');
}
