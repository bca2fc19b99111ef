// The direct agent-socket channel against a real qemu-ga running on the host in unix-listen mode (no VM; every
// command that could change the host is blocked with -b, and startHostQga checks that it is). What the fake agent
// cannot prove is proved here: the agent's own parser (which outlives connections and is reset only by 0xFF), its
// error reply to the 0xFF, the one-client backlog, a reply that arrives after the deadline, and that close() never
// takes the agent down.
import type net from 'node:net';
import os from 'node:os';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentSocketChannel, type AgentChannelOptions } from '../../src/agent-socket/channel.js';
import { AgentSocketError } from '../../src/agent-socket/errors.js';
import { mapAgentSocketError } from '../../src/domains/backend-errors.js';
import { GatewayError } from '../../src/errors.js';
import { BLOCKED_RPCS, rawExchange, startHostQga, type HostQga } from '../support/host-qga.js';
import { connectRaw, leaveCleanly } from '../support/raw-unix-client.js';

const log = pino({ level: 'silent' });
const STALE_SYNCS =
  '{"execute":"guest-sync-delimited","arguments":{"id":111}}\n{"execute":"guest-sync-delimited","arguments":{"id":222}}\n';
const SYNC_MS = 1000;
const MiB = 1024 * 1024;

let qga: HostQga;
const channels: AgentSocketChannel[] = [];

function open(over: Partial<AgentChannelOptions> = {}): AgentSocketChannel {
  const ch = new AgentSocketChannel({
    path: qga.path,
    connectTimeoutMs: 2000,
    syncTimeoutMs: SYNC_MS,
    maxReplyBytes: 16 * MiB,
    log,
    ...over,
  });
  channels.push(ch);
  return ch;
}

const live = () => new AbortController().signal;
type Reply = { return?: unknown; error?: { class: string; desc: string } };
/** The channel raises its own errors (AgentSocketError); run() rejects with them as callers see them, the gateway's. */
async function run(ch: AgentSocketChannel, cmd: object, signal = live()): Promise<Reply> {
  const text = await ch
    .command(JSON.stringify(cmd), { signal })
    .catch((err: unknown) => Promise.reject(err instanceof AgentSocketError ? mapAgentSocketError(err) : err));
  return JSON.parse(text ?? 'null') as Reply;
}

/** The channel's socket, for writing bytes behind its back (the test hook: nothing in the channel's API allows it). */
function socketOf(ch: AgentSocketChannel): net.Socket {
  const conn = (ch as unknown as { conn: { socket: net.Socket } | null }).conn;
  if (!conn) throw new Error('the channel has no connection');
  return conn.socket;
}

/** Retries while the channel refuses at once during its reconnect backoff (the agent restarting). */
async function eventually(ch: AgentSocketChannel, cmd: object, withinMs = 10_000): Promise<Reply> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      return await run(ch, cmd);
    } catch (err) {
      if (!(err instanceof GatewayError) || err.code !== 'agent_not_connected' || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)]!;

beforeAll(async () => {
  qga = await startHostQga({ restartOnExit: true });
});

afterEach(async () => {
  await Promise.all(channels.splice(0).map((ch) => ch.close()));
  await qga.running();
});

afterAll(async () => {
  await qga?.stop();
});

describe('AgentSocketChannel against qemu-ga on the host', () => {
  it('runs guest-ping, guest-info and guest-get-host-name; the blocked commands stay blocked', async () => {
    const ch = open();
    expect(await run(ch, { execute: 'guest-ping' })).toEqual({ return: {} });
    // qemu-ga answered the 0xFF with its error reply right before the sync answer: recognised, not counted as stale.
    expect(ch.lastResync).toMatchObject({ inStep: true, staleReplies: 0, discardedBytes: 0 });
    expect(ch.state).toBe('connected');
    const info = (await run(ch, { execute: 'guest-info' })).return as {
      version: string;
      supported_commands: { name: string; enabled: boolean }[];
    };
    expect(info.version).toBe(qga.version);
    const enabled = new Map(info.supported_commands.map((c) => [c.name, c.enabled]));
    expect(enabled.get('guest-ping')).toBe(true);
    for (const name of BLOCKED_RPCS) expect(enabled.get(name) ?? false, name).toBe(false);
    expect(await run(ch, { execute: 'guest-get-host-name' })).toEqual({ return: { 'host-name': os.hostname() } });
    const refused = await run(ch, { execute: 'guest-exec', arguments: { path: '/bin/true' } });
    expect(refused.error?.class).toBe('CommandNotFound');
    expect(refused.error?.desc).toMatch(/disabled/);
  });

  it('works after a client that gave up before the answer (the agent stays up)', async () => {
    const pid = qga.pid;
    const quitter = await connectRaw(qga.path);
    quitter.write('{"execute":"guest-info"}\n');
    quitter.end(); // gone before the answer exists: the agent's write fails with EPIPE, its read sees EOF
    await new Promise((r) => setTimeout(r, 100));
    const ch = open();
    expect(await run(ch, { execute: 'guest-ping' })).toEqual({ return: {} });
    expect(qga.pid).toBe(pid);
  });

  it('works after a client that gave up mid-reply (qemu-ga 7.2 dies of it; the channel reconnects to the new one)', async () => {
    const restarts = qga.restarts;
    const ch = open();
    expect(await run(ch, { execute: 'guest-ping' })).toEqual({ return: {} });
    await ch.close();
    const quitter = await connectRaw(qga.path);
    // Paused, Node still reads up to its 16 KiB high-water mark: ask for about 130 KB of answers so that most of them
    // stay in the socket's receive queue, then close with them unread: the agent's next read gets ECONNRESET.
    quitter.pause();
    quitter.write('{"execute":"guest-info"}\n'.repeat(40));
    await new Promise((r) => setTimeout(r, 200));
    quitter.destroy();
    const again = open();
    expect(await eventually(again, { execute: 'guest-get-host-name' })).toEqual({ return: { 'host-name': os.hostname() } });
    expect(again.state).toBe('connected');
    const fate = qga.restarts > restarts ? `exited (${JSON.stringify(qga.exits.at(-1))}) and was restarted` : 'survived';
    console.info(`[host-qga] client gone mid-reply: qemu-ga ${qga.version} ${fate}`);
  });

  it("resets the agent's parser with 0xFF after a previous client left garbage and half a command in it", async () => {
    // The garbage is answered with error replies (read here, so the agent sees a clean EOF); the half command gets
    // no answer and stays in qemu-ga's parser after this client leaves: only the 0xFF clears it.
    const errors = await rawExchange(qga.path, 'garbage \x01\x02 {"execute":"guest-ping"}\n', 2);
    expect(errors.some((e) => e.includes('JSON parse error'))).toBe(true);
    const previous = await connectRaw(qga.path);
    previous.write('{"execute":"guest-info","arguments":{');
    await leaveCleanly(previous);
    const ch = open();
    expect(await run(ch, { execute: 'guest-get-host-name' })).toEqual({ return: { 'host-name': os.hostname() } });
    // The 0xFF cleared the half command without a reply (7.2 and 10.0 alike): the resynchronisation before the
    // command found the channel in step, nothing to discard.
    expect(ch.lastResync).toMatchObject({ command: 'guest-sync-delimited', inStep: true, discardedBytes: 0, staleReplies: 0 });
  });

  it('sync() gets its answer through a parser left inside an unfinished command, and leaves the channel in step', async () => {
    const previous = await connectRaw(qga.path);
    previous.write('{"execute":"guest-info","arguments":{');
    await leaveCleanly(previous);
    const ch = open();
    // qemu-ga's parser swallows the plain guest-sync whole; the channel falls back to 0xFF + guest-sync-delimited.
    const report = await ch.sync('guest-sync', { signal: live() });
    expect(report).toMatchObject({ command: 'guest-sync', inStep: false });
    expect(report.roundTripMs).toBeGreaterThanOrEqual(SYNC_MS);
    const deadline = AbortSignal.timeout(2000);
    expect(await run(ch, { execute: 'guest-get-host-name' }, deadline)).toEqual({ return: { 'host-name': os.hostname() } });
  });

  it('notices error replies to garbage written behind its back, and resynchronises before the next command', async () => {
    const ch = open();
    expect(await run(ch, { execute: 'guest-ping' })).toEqual({ return: {} });
    socketOf(ch).write('garbage \x01\x02 more garbage\n');
    // qemu-ga answers with error replies nobody asked for: the channel sees them arrive and is no longer in step.
    await waitUntil(() => ch.state === 'connecting', 'the channel to notice unsolicited replies');
    expect(await run(ch, { execute: 'guest-get-host-name' })).toEqual({ return: { 'host-name': os.hostname() } });
    expect(ch.lastResync!.staleReplies).toBeGreaterThanOrEqual(1);
  });

  it('recovers when half a command was written behind its back: one deadline, then a resync', async () => {
    const ch = open();
    expect(await run(ch, { execute: 'guest-ping' })).toEqual({ return: {} });
    socketOf(ch).write('{"execute":"guest-info","arguments":{');
    // The agent's parser swallows the next command whole: no answer, the caller's deadline passes...
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(new GatewayError('deadline_exceeded', 'deadline')), 300);
    await expect(run(ch, { execute: 'guest-ping' }, deadline.signal)).rejects.toMatchObject({ code: 'deadline_exceeded' });
    // ...and the resynchronisation that follows clears it.
    expect(await run(ch, { execute: 'guest-get-host-name' })).toEqual({ return: { 'host-name': os.hostname() } });
  });

  it('ignores stale sync answers with other ids (and sync() reports them)', async () => {
    const ch = open();
    expect(await run(ch, { execute: 'guest-ping' })).toEqual({ return: {} });
    const stale = STALE_SYNCS;
    socketOf(ch).write(stale);
    const report = await ch.sync('guest-sync-delimited', { signal: live() });
    expect(report).toMatchObject({ inStep: false, staleReplies: 2, discardedBytes: 0 });
    expect(ch.state).toBe('connected');

    socketOf(ch).write(stale);
    await waitUntil(() => ch.state === 'connecting', 'the stale answers to arrive');
    expect(await run(ch, { execute: 'guest-ping' })).toEqual({ return: {} });
    expect(ch.lastResync).toMatchObject({ staleReplies: 2, inStep: false });

    const clean = await ch.sync('guest-sync', { signal: live() });
    expect(clean).toMatchObject({ command: 'guest-sync', inStep: true, staleReplies: 0, discardedBytes: 0 });
  });

  it('discards a reply that arrives after the deadline, during the next command', async () => {
    // guest-file-read of 4 MiB from /dev/zero takes qemu-ga about 90 ms here and answers 5.6 MB of base64; the
    // channel's cap is 1 MiB, so the late answer is also counted through, never held.
    const ch = open({ maxReplyBytes: 1 * MiB });
    const handle = (await run(ch, { execute: 'guest-file-open', arguments: { path: '/dev/zero' } })).return as number;
    try {
      const deadline = new AbortController();
      const late = run(ch, { execute: 'guest-file-read', arguments: { handle, count: 4 * MiB } }, deadline.signal);
      setTimeout(() => deadline.abort(new GatewayError('deadline_exceeded', 'deadline')), 10);
      await expect(late).rejects.toMatchObject({ code: 'deadline_exceeded' });
      // Behind the read, two sync answers with other ids: they come after the late reply, 0xFF-delimited like the one
      // the channel waits for, and must not be taken for it.
      socketOf(ch).write(STALE_SYNCS);
      const started = performance.now();
      expect(await run(ch, { execute: 'guest-get-host-name' })).toEqual({ return: { 'host-name': os.hostname() } });
      const waitedMs = performance.now() - started;
      expect(ch.lastResync!.discardedBytes).toBeGreaterThan(5_000_000);
      expect(ch.lastResync!.staleReplies).toBe(2);
      console.info(
        `[host-qga] late 4 MiB read discarded: ${ch.lastResync!.discardedBytes} bytes, next command answered after ${waitedMs.toFixed(1)} ms`,
      );
    } finally {
      await run(ch, { execute: 'guest-file-close', arguments: { handle } });
    }
  });

  it('refuses a reply over maxReplyBytes and carries on in step', async () => {
    const ch = open({ maxReplyBytes: 256 * 1024 });
    const handle = (await run(ch, { execute: 'guest-file-open', arguments: { path: '/dev/zero' } })).return as number;
    try {
      await expect(run(ch, { execute: 'guest-file-read', arguments: { handle, count: MiB } })).rejects.toMatchObject({
        code: 'agent_reply_too_large',
      });
      const small = (await run(ch, { execute: 'guest-file-read', arguments: { handle, count: 3 } })).return;
      expect(small).toMatchObject({ count: 3, 'buf-b64': 'AAAA' });
      expect(ch.lastResync!.discardedBytes).toBeGreaterThan(MiB);
    } finally {
      await run(ch, { execute: 'guest-file-close', arguments: { handle } });
    }
  });

  it('answers agent_busy while another client holds the socket, then works once it leaves', async () => {
    const holder = await connectRaw(qga.path);
    await new Promise((r) => setTimeout(r, 50)); // accepted: qemu-ga now ignores later connections
    const ch = open();
    const started = Date.now();
    const err = await run(ch, { execute: 'guest-ping' }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('agent_busy');
    expect(elapsed).toBeLessThan(SYNC_MS + 500);
    expect(ch.state).toBe('disconnected');
    await leaveCleanly(holder);
    expect(await run(ch, { execute: 'guest-ping' })).toEqual({ return: {} });
    expect(ch.state).toBe('connected');
  });

  it('close() with an answer still streaming in leaves the agent running', async () => {
    const pid = qga.pid;
    const restarts = qga.restarts;
    const ch = open();
    const handle = (await run(ch, { execute: 'guest-file-open', arguments: { path: '/dev/zero' } })).return as number;
    const firstBytes = new Promise((r) => socketOf(ch).once('data', r));
    const reading = run(ch, { execute: 'guest-file-read', arguments: { handle, count: 4 * MiB } }).catch((e: unknown) => e);
    await firstBytes; // the 5.6 MB answer has started to arrive
    await ch.close();
    expect(await reading).toMatchObject({ code: 'shutting_down' });
    await new Promise((r) => setTimeout(r, 300));
    expect(qga.restarts).toBe(restarts);
    expect(qga.pid).toBe(pid);
    const next = open();
    expect(await run(next, { execute: 'guest-file-close', arguments: { handle } })).toEqual({ return: {} });
  });

  it('ping round trip: the channel against a minimal raw client (median of 500 each)', async () => {
    const N = 500;
    const ch = open();
    await run(ch, { execute: 'guest-ping' });
    const viaChannel: number[] = [];
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      await ch.command('{"execute":"guest-ping"}', { signal: live() });
      viaChannel.push(performance.now() - t);
    }
    await ch.close();

    const raw = await connectRaw(qga.path);
    const lines = lineReader(raw);
    raw.write(Buffer.from('\xff{"execute":"guest-sync-delimited","arguments":{"id":9}}\n', 'latin1'));
    await lines.next(); // the 0xFF's error reply
    await lines.next(); // 0xFF{"return": 9}
    const viaRaw: number[] = [];
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      raw.write('{"execute":"guest-ping"}\n');
      await lines.next();
      viaRaw.push(performance.now() - t);
    }
    await leaveCleanly(raw);

    const figures = {
      channelMedianMs: +median(viaChannel).toFixed(3),
      channelP95Ms: +p95(viaChannel).toFixed(3),
      rawMedianMs: +median(viaRaw).toFixed(3),
      rawP95Ms: +p95(viaRaw).toFixed(3),
    };
    console.info(`[host-qga] guest-ping round trip over ${N} calls: ${JSON.stringify(figures)}`);
    // The channel adds a parse and a promise per call; it must stay in the raw client's league.
    expect(figures.channelMedianMs).toBeLessThan(figures.rawMedianMs * 3 + 0.5);
  });
});

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Newline-terminated replies from a raw socket, one per next(). */
function lineReader(s: net.Socket): { next(): Promise<string> } {
  let buf = '';
  const ready: string[] = [];
  let waiting: ((line: string) => void) | null = null;
  s.setEncoding('latin1');
  s.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (waiting) {
        const w = waiting;
        waiting = null;
        w(line);
      } else ready.push(line);
    }
  });
  return {
    next: () => {
      const line = ready.shift();
      if (line !== undefined) return Promise.resolve(line);
      return new Promise((resolve) => (waiting = resolve));
    },
  };
}
