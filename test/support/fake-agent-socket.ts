// An in-process fake guest agent on a unix socket, speaking qemu-ga's wire protocol as measured against qemu-ga 7.2:
// newline-terminated JSON replies, a 0xFF before the answer to guest-sync-delimited, an error reply
// ("JSON parse error, stray '\uFFFD'") for every 0xFF received, one client served at a time (later ones are accepted
// by the kernel but not read until the served one leaves, as in a listen backlog), and one input parser whose state
// outlives connections. Everything the tests need to break is a switch:
//
//   const agent = await FakeAgentSocket.start();          // { mode: 'unix-listen' } sends replies only to the sender
//   agent.handler = (cmd, a) => ...                        // string = reply JSON (newline added), Buffer = raw bytes, null = no reply
//   agent.delayMs = 200 | (cmd) => ms                     // before each answer (commands are still answered in order)
//   agent.splitWrites = true                              // every reply one byte per write, one event-loop turn apart
//   agent.coalesce = true                                 // replies produced close together leave in one write
//   agent.silent = true                                   // read everything, answer nothing (a hung or absent agent)
//   agent.sendRaw(bytes)                                  // unsolicited bytes to the client being served
//   agent.inputLog                                        // what arrived, in order: 'FF', command names, 'garbage'
//   await agent.stop(); await agent.restart(); await agent.dispose()
//
// Modes: 'chardev' (default) is QEMU's chardev server: the guest agent does not know about host clients, so an answer
// goes to whichever client is connected when it is written (a previous client's late answers reach the next one).
// 'unix-listen' is qemu-ga -m unix-listen: an answer goes to the client that asked, or nowhere.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { trackedSleep } from './tracked-sleep.js';

export interface FakeCommand {
  execute: string;
  arguments?: Record<string, unknown>;
  /** The line as received. */
  raw: string;
  /** Which connection sent it (1, 2, ... in order of acceptance). */
  client: number;
}

/** string: the reply's JSON text (a newline is added); Buffer: bytes written as they are; null: no reply at all. */
export type FakeAnswer = string | Buffer | null;
export type FakeHandler = (cmd: FakeCommand, agent: FakeAgentSocket) => FakeAnswer | Promise<FakeAnswer>;

export const STRAY_SENTINEL_ERROR = '{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'\\uFFFD\'"}}';

const PARSE_ERROR = '{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword"}}';

/** ping, info, host name, the two syncs, guest-shutdown (no reply), test-echo (returns its arguments), else CommandNotFound. */
export const defaultFakeHandler: FakeHandler = (cmd) => {
  const args = cmd.arguments ?? {};
  switch (cmd.execute) {
    case 'guest-sync':
      return JSON.stringify({ return: args.id });
    case 'guest-sync-delimited':
      return Buffer.from(`\xff${JSON.stringify({ return: args.id })}\n`, 'latin1');
    case 'guest-ping':
      return '{"return": {}}';
    case 'guest-info':
      return JSON.stringify({
        return: {
          version: '7.2.0-fake',
          supported_commands: ['guest-ping', 'guest-info', 'guest-sync', 'guest-sync-delimited', 'guest-get-host-name'].map((name) => ({
            name,
            enabled: true,
            'success-response': true,
          })),
        },
      });
    case 'guest-get-host-name':
      return '{"return": {"host-name": "fake-guest"}}';
    case 'guest-shutdown':
      return null;
    case 'test-echo':
      return JSON.stringify({ return: args });
    default:
      return JSON.stringify({
        error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` },
      });
  }
};

type Work = { kind: 'command'; cmd: FakeCommand; client: Client } | { kind: 'error'; reply: string; client: Client };

interface Client {
  id: number;
  socket: net.Socket;
  open: boolean;
}

export class FakeAgentSocket {
  handler: FakeHandler = defaultFakeHandler;
  delayMs: number | ((cmd: FakeCommand) => number) = 0;
  splitWrites = false;
  coalesce = false;
  silent = false;
  /** What arrived, in order: 'FF' for each 0xFF, the name of each command, 'garbage' for a line that is not a command. */
  readonly inputLog: string[] = [];
  readonly received: FakeCommand[] = [];
  /** Replies written (to anyone). */
  repliesSent = 0;
  connectionsAccepted = 0;

  private server: net.Server | null = null;
  private served: Client | null = null;
  private readonly waiting: Client[] = [];
  private readonly clients = new Set<Client>();
  /** The parser's unfinished input: like qemu-ga's, it survives a client leaving. */
  private pending = Buffer.alloc(0);
  private queue: Promise<void> = Promise.resolve();
  private readonly timers = new Set<NodeJS.Timeout>();
  private generation = 0;
  private coalesced: { client: Client; bytes: Buffer[] } | null = null;

  private constructor(
    readonly dir: string,
    readonly path: string,
    readonly mode: 'chardev' | 'unix-listen',
  ) {}

  static async start(opts: { mode?: 'chardev' | 'unix-listen' } = {}): Promise<FakeAgentSocket> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fake-qga-'));
    const agent = new FakeAgentSocket(dir, path.join(dir, 'agent.sock'), opts.mode ?? 'chardev');
    await agent.listen();
    return agent;
  }

  get servedClients(): number {
    return this.served ? 1 : 0;
  }

  get waitingClients(): number {
    return this.waiting.length;
  }

  get openClients(): number {
    return this.clients.size;
  }

  /** Bytes to the client being served, now, outside any answer. */
  sendRaw(bytes: Buffer | string): void {
    if (!this.served) throw new Error('no client is being served');
    this.served.socket.write(bytes);
  }

  /** Closes the listener and every client (the socket file goes too); pending answers are dropped. */
  async stop(): Promise<void> {
    this.generation += 1;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue = Promise.resolve();
    this.pending = Buffer.alloc(0);
    this.coalesced = null;
    const server = this.server;
    this.server = null;
    this.served = null;
    this.waiting.length = 0;
    const closing = [...this.clients].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.socket.destroyed) {
            resolve();
            return;
          }
          c.socket.once('close', () => resolve());
          c.socket.destroy();
        }),
    );
    this.clients.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all(closing);
  }

  /** Listens again on the same path (after stop()). */
  async restart(): Promise<void> {
    if (this.server) throw new Error('the fake agent is running');
    await this.listen();
  }

  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Polls cond until true, or throws after timeoutMs. */
  async waitFor(cond: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > until) throw new Error(`fake agent: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  // -------------------------------------------------------------------------------------------------------------

  private listen(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    this.connectionsAccepted += 1;
    const client: Client = { id: this.connectionsAccepted, socket, open: true };
    this.clients.add(client);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => this.input(client, chunk));
    socket.on('close', () => {
      client.open = false;
      this.clients.delete(client);
      const i = this.waiting.indexOf(client);
      if (i >= 0) this.waiting.splice(i, 1);
      if (this.served === client) this.serveNext();
    });
    if (this.served) {
      // Not read until its turn: what it writes waits in the socket, as in a listen backlog.
      socket.pause();
      this.waiting.push(client);
    } else {
      this.served = client;
    }
  }

  private serveNext(): void {
    this.served = this.waiting.shift() ?? null;
    this.served?.socket.resume();
  }

  private input(client: Client, chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const nl = buf.indexOf(0x0a);
      const ff = buf.indexOf(0xff);
      if (ff >= 0 && (nl < 0 || ff < nl)) {
        // The 0xFF resets the parser (the unfinished input before it is lost) and is itself answered with an error.
        this.inputLog.push('FF');
        this.enqueue({ kind: 'error', reply: STRAY_SENTINEL_ERROR, client });
        buf = buf.subarray(ff + 1);
        continue;
      }
      if (nl < 0) break;
      const line = buf.subarray(0, nl).toString('utf8');
      buf = buf.subarray(nl + 1);
      if (line.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = undefined;
      }
      const obj = parsed as { execute?: unknown; arguments?: Record<string, unknown> } | undefined;
      if (obj && typeof obj === 'object' && typeof obj.execute === 'string') {
        const cmd: FakeCommand = { execute: obj.execute, raw: line, client: client.id };
        if (obj.arguments !== undefined) cmd.arguments = obj.arguments;
        this.inputLog.push(cmd.execute);
        this.received.push(cmd);
        this.enqueue({ kind: 'command', cmd, client });
      } else {
        this.inputLog.push('garbage');
        this.enqueue({ kind: 'error', reply: PARSE_ERROR, client });
      }
    }
    this.pending = Buffer.from(buf);
  }

  /** Answers are produced one after another, in the order the input came, like qemu-ga's single thread. */
  private enqueue(work: Work): void {
    const gen = this.generation;
    this.queue = this.queue.then(() => (gen === this.generation ? this.process(work, gen) : undefined)).catch(() => {});
  }

  private async process(work: Work, gen: number): Promise<void> {
    if (this.silent) return;
    let answer: FakeAnswer;
    if (work.kind === 'error') {
      answer = work.reply;
    } else {
      const delay = typeof this.delayMs === 'function' ? this.delayMs(work.cmd) : this.delayMs;
      if (delay > 0) await trackedSleep(this.timers, delay);
      if (gen !== this.generation) return;
      answer = await this.handler(work.cmd, this);
    }
    if (answer === null || gen !== this.generation) return;
    const bytes = typeof answer === 'string' ? Buffer.from(`${answer}\n`, 'utf8') : answer;
    const target = this.mode === 'chardev' ? this.served : work.client;
    if (!target?.open) return; // nobody to read it: dropped, as the guest's writes are
    this.repliesSent += 1;
    await this.write(target, bytes, gen);
  }

  private async write(client: Client, bytes: Buffer, gen: number): Promise<void> {
    if (this.splitWrites) {
      for (const byte of bytes) {
        if (gen !== this.generation || !client.open) return;
        client.socket.write(Buffer.of(byte));
        await new Promise((r) => setImmediate(r));
      }
      return;
    }
    if (this.coalesce) {
      if (this.coalesced && this.coalesced.client === client) {
        this.coalesced.bytes.push(bytes);
        return;
      }
      this.coalesced = { client, bytes: [bytes] };
      setImmediate(() => {
        const batch = this.coalesced;
        this.coalesced = null;
        if (batch?.client.open && gen === this.generation) batch.client.socket.write(Buffer.concat(batch.bytes));
      });
      return;
    }
    client.socket.write(bytes);
  }
}
