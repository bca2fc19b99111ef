// The fake libvirtd's sockets and framing: where it listens (a unix socket in a temp dir, TCP, or TLS the way
// libvirtd's TLS port does it), each client's packet decoder, and the writer that can cut or gather what it sends.
import { mkdtemp } from 'node:fs/promises';
import type net from 'node:net';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextLoopTurn } from 'node:timers/promises';
import tls from 'node:tls';
import { PacketDecoder, type Packet } from '../../../src/libvirt/framing.js';
import type { MessageProcedure } from '../../../src/libvirt/procedures.js';
import { MessageStatus, MessageType, PROTOCOL_VERSION, encodePacket } from '../../../src/libvirt/protocol.js';
import type { FakeClientInfo, FakeLibvirtdOptions, FakeTlsOptions } from './types.js';

export interface Listener {
  server: net.Server;
  /** The unix socket path, or null when listening on TCP. */
  socketPath: string | null;
  /** The TCP port, or null when listening on a unix socket. */
  port: number | null;
  /** The temp dir made for the socket, removed on stop. */
  tempDir: string | null;
}

/**
 * A TLS server that behaves like libvirtd's TLS port: the client certificate is asked for but judged after the
 * handshake; accepted clients get the byte 1 and are handed on as 'libvirtClient', refused ones are closed.
 */
function tlsServer(o: FakeTlsOptions): tls.Server {
  const server = tls.createServer({ cert: o.cert, key: o.key, ca: o.ca, requestCert: o.requestCert, rejectUnauthorized: false });
  server.on('secureConnection', (socket) => {
    socket.on('error', () => {});
    if (o.requestCert && !socket.authorized) {
      socket.destroy();
      return;
    }
    socket.write(Buffer.from([o.rejectByte ?? 1]));
    if (o.rejectByte === undefined || o.rejectByte === 1) server.emit('libvirtClient', socket);
  });
  // Handshake failures (a client that refuses our certificate) are the client's business.
  server.on('tlsClientError', () => {});
  return server;
}

function listen(server: net.Server, where: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Listens on a unix socket in a new temp dir (default), on opts.socketPath, or on 127.0.0.1:0 with tcp or tls. */
export async function startListener(opts: FakeLibvirtdOptions): Promise<Listener> {
  if (opts.tls || opts.tcp) {
    const server = opts.tls ? tlsServer(opts.tls) : createServer();
    await listen(server, { host: '127.0.0.1', port: 0 });
    return { server, socketPath: null, port: (server.address() as net.AddressInfo).port, tempDir: null };
  }
  const server = createServer();
  let tempDir: string | null = null;
  let socketPath = opts.socketPath;
  if (!socketPath) {
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'fake-libvirtd-'));
    socketPath = path.join(tempDir, 'libvirt-sock');
  }
  await listen(server, { path: socketPath });
  return { server, socketPath, port: null, tempDir };
}

/** One client connection, as the fake keeps it. */
export interface ClientState extends FakeClientInfo {
  id: number;
  socket: net.Socket;
  decoder: PacketDecoder;
  authenticated: boolean;
  opened: boolean;
  openedName: string | null;
  keepaliveRequested: boolean;
  callbacks: Map<number, { eventID: number; domain: string | null }>;
  /** Calls running now. */
  running: number;
  /** Calls waiting for a free worker slot (max_client_requests). */
  waiting: Packet[];
  inFlight: number;
  outbox: Buffer[];
  pumping: boolean;
}

/** A new client on this socket: every packet it sends goes to onPacket; a corrupt stream closes it. */
export function attachClient(
  id: number,
  socket: net.Socket,
  onPacket: (client: ClientState, packet: Packet) => void,
  onClose: (client: ClientState) => void,
): ClientState {
  const client: ClientState = {
    id,
    socket,
    decoder: new PacketDecoder(),
    authenticated: false,
    opened: false,
    openedName: null,
    keepaliveRequested: false,
    callbacks: new Map(),
    running: 0,
    waiting: [],
    get inFlight() {
      return this.running + this.waiting.length;
    },
    outbox: [],
    pumping: false,
  };
  socket.setNoDelay?.(true);
  socket.on('data', (chunk: Buffer) => {
    let packets: Packet[];
    try {
      packets = client.decoder.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    for (const p of packets) onPacket(client, p);
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    client.waiting.length = 0;
    client.outbox.length = 0;
    onClose(client);
  });
  return client;
}

/** A keepalive message (PING or PONG): serial 0, no body. */
export function keepalivePacket({ program, procedure }: MessageProcedure<void>): Buffer {
  return encodePacket({ program, version: PROTOCOL_VERSION, procedure, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK });
}

/** Fault injection on the byte stream, read at each write. */
export interface WriteShaping {
  /** Every packet in pieces ('bytes' = one byte per write, 'random' = 1..7 bytes), a loop turn apart. */
  readonly splitWrites: false | 'bytes' | 'random';
  /** The packets produced within one loop turn gathered into a single write. */
  readonly coalesce: boolean;
}

/** Writes one packet to a client, honouring the shaping; packets to one client stay in order. */
export function sendPacket(client: ClientState, packet: Buffer, shaping: WriteShaping): void {
  if (client.socket.destroyed) return;
  client.outbox.push(packet);
  if (!client.pumping) void pump(client, shaping);
}

async function pump(client: ClientState, shaping: WriteShaping): Promise<void> {
  client.pumping = true;
  try {
    while (client.outbox.length > 0 && !client.socket.destroyed) {
      if (shaping.coalesce) await nextLoopTurn();
      const chunk = shaping.coalesce ? Buffer.concat(client.outbox.splice(0)) : client.outbox.shift()!;
      if (!shaping.splitWrites) {
        client.socket.write(chunk);
        continue;
      }
      for (let off = 0; off < chunk.length; ) {
        const n = shaping.splitWrites === 'bytes' ? 1 : 1 + Math.floor(Math.random() * 7);
        if (client.socket.destroyed) return;
        client.socket.write(chunk.subarray(off, off + n));
        off += n;
        await nextLoopTurn();
      }
    }
  } finally {
    client.pumping = false;
  }
}
