// The direct agent-socket channel against an in-process fake agent (test/support/fake-agent-socket.ts): framing,
// resynchronisation, stale and late replies, oversize and garbage, busy / refused sockets, reconnection, close().
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AgentSocketChannel, type AgentChannelOptions } from '../../src/agent-socket/channel.js';
import { Backoff, BACKOFF_MAX_MS, backoffDelayMs } from '../../src/agent-socket/backoff.js';
import { ReplySplitter, type Frame } from '../../src/agent-socket/reply-splitter.js';
import { AgentSocketError } from '../../src/agent-socket/errors.js';
import { mapAgentSocketError } from '../../src/domains/backend-errors.js';
import { GatewayError } from '../../src/errors.js';
import { defaultFakeHandler, FakeAgentSocket } from '../support/fake-agent-socket.js';
import { connectRaw, leaveCleanly } from '../support/raw-unix-client.js';

const log = pino({ level: 'silent' });
const SYNC_MS = 300;

function channelFor(agentPath: string, over: Partial<AgentChannelOptions> = {}): AgentSocketChannel {
  return new AgentSocketChannel({
    path: agentPath,
    connectTimeoutMs: 1000,
    syncTimeoutMs: SYNC_MS,
    maxReplyBytes: 64 * 1024,
    log,
    ...over,
  });
}

/** A signal that never fires by itself (no timer: the leak test counts timers). */
const live = () => new AbortController().signal;

/** The channel raises its own errors (AgentSocketError); callers see them as the gateway's, which the codes below are. */
const seenByCaller = (err: unknown) => (err instanceof AgentSocketError ? mapAgentSocketError(err) : err);
const asCallerSees = <T>(p: Promise<T>) => p.catch((err: unknown) => Promise.reject(seenByCaller(err)));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return seenByCaller(err);
  }
  throw new Error('expected a rejection');
}

async function expectCode(p: Promise<unknown>, code: string): Promise<GatewayError> {
  const err = await rejection(p);
  expect(err).toBeInstanceOf(GatewayError);
  expect((err as GatewayError).code).toBe(code);
  return err as GatewayError;
}

const echo = (args: Record<string, unknown>) => JSON.stringify({ execute: 'test-echo', arguments: args });
const parse = (text: string | null) => JSON.parse(text ?? 'null') as { return?: unknown; error?: unknown };
/** The resynchronisation the channel writes: the sentinel, then guest-sync-delimited. */
const RESYNC = ['FF', 'guest-sync-delimited'];

describe('ReplySplitter', () => {
  function split(max: number, chunks: (string | Buffer)[]): Frame[] {
    const frames: Frame[] = [];
    const s = new ReplySplitter(max, (f) => frames.push(f));
    for (const c of chunks) s.feed(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
    return frames;
  }
  const text = (f: Frame) => (f.type === 'line' ? f.bytes.toString('latin1') : f.type);

  it('frames several lines in one chunk and one line over many chunks, marking the delimited one', () => {
    const frames = split(100, ['{"a":1}\n{"b"', ':2}\n\xff{"return": 7}\n{"c":', '3}']);
    expect(frames.map(text)).toEqual(['{"a":1}', '{"b":2}', '{"return": 7}']);
    expect(frames.map((f) => f.type === 'line' && f.delimited)).toEqual([false, false, true]);
  });

  it('a 0xFF cuts a partial line (reported as dropped) and delimits the next', () => {
    const frames = split(100, ['{"half":', '\xff{"return": 1}\n']);
    expect(frames).toEqual([
      { type: 'dropped', bytes: 8, reason: 'cut' },
      { type: 'line', bytes: Buffer.from('{"return": 1}'), delimited: true },
    ]);
  });

  it('an over-long line is reported once as overflow, counted not stored, and dropped at its end', () => {
    const frames = split(10, ['0123456789', 'abc', 'defgh\n{"ok":1}\n']);
    expect(frames[0]).toEqual({ type: 'overflow' });
    expect(frames[1]).toEqual({ type: 'dropped', bytes: 19, reason: 'overflow' });
    expect(frames.slice(2).map(text)).toEqual(['{"ok":1}']);
  });

  it('keeps exact multi-byte UTF-8 split between chunks', () => {
    const bytes = Buffer.from('{"s":"héllo ✓"}\n', 'utf8');
    const frames = split(
      100,
      [...bytes].map((b) => Buffer.of(b)),
    );
    expect(frames).toHaveLength(1);
    expect(frames[0]!.type === 'line' && frames[0]!.bytes.toString('utf8')).toBe('{"s":"héllo ✓"}');
  });
});

describe('backoff', () => {
  it('grows from 250 ms to 10 s, jittered between half and all of each step', () => {
    expect(backoffDelayMs(1, () => 0)).toBe(125);
    expect(backoffDelayMs(1, () => 0.999999)).toBe(250);
    expect(backoffDelayMs(2, () => 0.999999)).toBe(500);
    expect(backoffDelayMs(6, () => 0.999999)).toBe(8000);
    expect(backoffDelayMs(7, () => 0.999999)).toBe(BACKOFF_MAX_MS);
    expect(backoffDelayMs(500, () => 0.999999)).toBe(BACKOFF_MAX_MS);
    expect(backoffDelayMs(500, () => 0)).toBe(BACKOFF_MAX_MS / 2);
  });

  it('allows the next attempt only after the pause, and resets on success', () => {
    let now = 1000;
    const b = new Backoff(() => now);
    expect(b.remainingMs()).toBe(0);
    const d = b.failed('ECONNREFUSED');
    expect(d).toBeGreaterThanOrEqual(125);
    expect(b.remainingMs()).toBe(d);
    now += d;
    expect(b.remainingMs()).toBe(0);
    b.failed('again');
    expect(b.consecutiveFailures).toBe(2);
    b.succeeded();
    expect(b.remainingMs()).toBe(0);
    expect(b.consecutiveFailures).toBe(0);
  });
});

describe('AgentSocketChannel against a fake agent', () => {
  let agent: FakeAgentSocket;
  let channel: AgentSocketChannel;

  beforeEach(async () => {
    agent = await FakeAgentSocket.start();
    channel = channelFor(agent.path);
  });

  afterEach(async () => {
    await channel.close();
    await agent.dispose();
    vi.restoreAllMocks();
  });

  it('connects lazily, resynchronises once, then sends commands in step', async () => {
    expect(channel.state).toBe('disconnected');
    expect(agent.connectionsAccepted).toBe(0);
    expect(parse(await channel.command('{"execute":"guest-ping"}', { signal: live() }))).toEqual({ return: {} });
    expect(channel.state).toBe('connected');
    const host = parse(await channel.command('{"execute":"guest-get-host-name"}', { signal: live() }));
    expect(host).toEqual({ return: { 'host-name': 'fake-guest' } });
    expect(agent.inputLog).toEqual([...RESYNC, 'guest-ping', 'guest-get-host-name']);
    // The agent's error reply to our own 0xFF is expected, not stale.
    expect(channel.lastResync).toMatchObject({ inStep: true, staleReplies: 0, discardedBytes: 0 });
    // Error replies are returned as text: mapping them is the caller's job.
    expect(parse(await channel.command('{"execute":"guest-nope"}', { signal: live() }))).toMatchObject({
      error: { class: 'CommandNotFound' },
    });
    expect(agent.connectionsAccepted).toBe(1);
  });

  it('reads a reply written one byte at a time (multi-byte UTF-8 included)', async () => {
    agent.splitWrites = true;
    const args = { text: 'gr\u00fc\u00dfe \u2713 '.repeat(20), n: 42 };
    expect(parse(await channel.command(echo(args), { signal: live() }))).toEqual({ return: args });
    expect(agent.repliesSent).toBe(3); // sentinel error, sync answer, the echo
  });

  it('reads several replies arriving in one chunk', async () => {
    agent.coalesce = true;
    // The 0xFF's error reply and the delimited answer leave together; then a handler that answers with two replies.
    agent.handler = (cmd, a) =>
      cmd.execute === 'guest-sync-delimited'
        ? Buffer.from(`{"return": {}}\n\xff{"return": 99}\n\xff{"return": ${String(cmd.arguments?.id)}}\n`, 'latin1')
        : defaultFakeHandler(cmd, a);
    expect(parse(await channel.command(echo({ k: 1 }), { signal: live() }))).toEqual({ return: { k: 1 } });
    expect(channel.lastResync).toMatchObject({ staleReplies: 3, inStep: false });
    expect(parse(await channel.command(echo({ k: 2 }), { signal: live() }))).toEqual({ return: { k: 2 } });
  });

  it('resynchronises again when an unsolicited reply follows the sync answer in the same chunk', async () => {
    let first = true;
    agent.handler = (cmd, a) => {
      if (cmd.execute !== 'guest-sync-delimited' || !first) return defaultFakeHandler(cmd, a);
      first = false;
      return Buffer.from(`\xff{"return": ${String(cmd.arguments?.id)}}\n{"return": "not yours"}\n`, 'latin1');
    };
    expect(parse(await channel.command(echo({ mine: 1 }), { signal: live() }))).toEqual({ return: { mine: 1 } });
    expect(agent.inputLog).toEqual([...RESYNC, ...RESYNC, 'test-echo']);
    expect(channel.lastResync).toMatchObject({ staleReplies: 1 });
  });

  it('discards garbage before the sync answer and counts it', async () => {
    const garbage = 'garbage \x01\x02 not json\n{"half": ';
    agent.handler = (cmd, a) =>
      cmd.execute === 'guest-sync-delimited'
        ? Buffer.from(`${garbage}\xff{"return": ${String(cmd.arguments?.id)}}\n`, 'latin1')
        : defaultFakeHandler(cmd, a);
    expect(parse(await channel.command('{"execute":"guest-ping"}', { signal: live() }))).toEqual({ return: {} });
    // The whole garbage line with its newline, plus the half reply cut by the 0xFF. The sentinel's error reply is not
    // counted as stale here because it does not come right before the answer.
    expect(channel.lastResync).toMatchObject({ discardedBytes: garbage.length, staleReplies: 1, inStep: false });
  });

  it("ignores a previous client's late answers, stale sync ids included (chardev: they reach the next client)", async () => {
    agent.delayMs = (cmd) => (cmd.client === 1 ? 150 : 0);
    const previous = await connectRaw(agent.path);
    previous.write('{"execute":"guest-sync-delimited","arguments":{"id":777}}\n{"execute":"guest-info"}\n');
    await agent.waitFor(() => agent.received.length === 2, 2000, "the previous client's commands");
    await leaveCleanly(previous);
    const reply = parse(await channel.command(echo({ mine: true }), { signal: live() }));
    expect(reply).toEqual({ return: { mine: true } });
    // {"return": 777} (delimited, wrong id) and guest-info's answer were read and thrown away.
    expect(channel.lastResync).toMatchObject({ staleReplies: 2, inStep: false });
  });

  it('a deadline passed: the late reply arrives during the next command and is discarded', async () => {
    agent.delayMs = (cmd) => (cmd.arguments?.slow ? 200 : 0);
    await channel.command('{"execute":"guest-ping"}', { signal: live() });
    const deadline = new AbortController();
    const late = channel.command(echo({ slow: true, n: 1 }), { signal: deadline.signal });
    setTimeout(() => deadline.abort(new GatewayError('deadline_exceeded', 'too slow')), 30);
    await expectCode(late, 'deadline_exceeded');
    expect(channel.state).toBe('connecting');
    // Sent at once: the agent is still working on n: 1, whose answer comes first, then the sentinel's, then ours.
    const next = parse(await channel.command(echo({ n: 2 }), { signal: live() }));
    expect(next).toEqual({ return: { n: 2 } });
    expect(agent.inputLog).toEqual([...RESYNC, 'guest-ping', 'test-echo', ...RESYNC, 'test-echo']);
    expect(channel.lastResync).toMatchObject({ staleReplies: 1, inStep: false });
    expect(channel.state).toBe('connected');
  });

  it('refuses an oversized reply and resynchronises before the next command', async () => {
    const big = 'x'.repeat(100 * 1024);
    const reply = parse(await channel.command('{"execute":"guest-ping"}', { signal: live() }));
    expect(reply).toEqual({ return: {} });
    const bigReply = `{"return": "${big}"}`;
    agent.handler = (cmd, a) => (cmd.execute === 'test-big' ? bigReply : defaultFakeHandler(cmd, a));
    await expectCode(channel.command('{"execute":"test-big"}', { signal: live() }), 'agent_reply_too_large');
    expect(parse(await channel.command('{"execute":"guest-ping"}', { signal: live() }))).toEqual({ return: {} });
    expect(agent.inputLog.slice(-4)).toEqual(['test-big', ...RESYNC, 'guest-ping']);
    // The rest of the big reply was read and counted, never kept.
    expect(channel.lastResync).toMatchObject({ discardedBytes: bigReply.length + 1, staleReplies: 0 });
  });

  it('sends a no-reply command without waiting and resynchronises before the next one', async () => {
    await channel.command('{"execute":"guest-ping"}', { signal: live() });
    const started = Date.now();
    expect(await channel.command('{"execute":"guest-shutdown"}', { signal: live(), expectReply: false })).toBeNull();
    expect(Date.now() - started).toBeLessThan(SYNC_MS);
    expect(channel.state).toBe('connecting');
    await channel.command('{"execute":"guest-ping"}', { signal: live() });
    expect(agent.inputLog).toEqual([...RESYNC, 'guest-ping', 'guest-shutdown', ...RESYNC, 'guest-ping']);
  });

  it('answers with agent_reply_invalid for a reply that is not JSON, then resynchronises', async () => {
    agent.handler = (cmd, a) => (cmd.execute === 'test-garbage' ? 'this is not json' : defaultFakeHandler(cmd, a));
    await expectCode(channel.command('{"execute":"test-garbage"}', { signal: live() }), 'agent_reply_invalid');
    expect(parse(await channel.command('{"execute":"guest-ping"}', { signal: live() }))).toEqual({ return: {} });
    expect(agent.inputLog).toEqual([...RESYNC, 'test-garbage', ...RESYNC, 'guest-ping']);
  });

  it('treats unsolicited bytes between commands as a reason to resynchronise', async () => {
    await channel.command('{"execute":"guest-ping"}', { signal: live() });
    agent.sendRaw('{"return": 12345}\n');
    await vi.waitFor(() => expect(channel.state).toBe('connecting'));
    await channel.command('{"execute":"guest-ping"}', { signal: live() });
    expect(agent.inputLog).toEqual([...RESYNC, 'guest-ping', ...RESYNC, 'guest-ping']);
    expect(channel.lastResync).toMatchObject({ staleReplies: 1 });
  });

  it('refuses a command with a newline, or that is not a JSON object, before sending anything', async () => {
    await expectCode(channel.command('{"execute":\n"guest-ping"}', { signal: live() }), 'invalid_request');
    await expectCode(channel.command('{"execute":"guest-ping"', { signal: live() }), 'invalid_request');
    await expectCode(channel.command('[1]', { signal: live() }), 'invalid_request');
    expect(agent.connectionsAccepted).toBe(0);
  });

  it('runs calls one at a time, first come first served; a call aborted while waiting is never sent', async () => {
    agent.delayMs = (cmd) => (cmd.arguments?.n === 1 ? 100 : 0);
    const order: number[] = [];
    const run = (n: number, signal: AbortSignal) =>
      channel.command(echo({ n }), { signal }).then((r) => {
        order.push(n);
        return r;
      });
    const waiting = new AbortController();
    const calls = [run(1, live()), run(2, live()), run(3, waiting.signal), run(4, live()), run(5, live())];
    waiting.abort(new Error('client gone'));
    await expect(calls[2]).rejects.toThrow('client gone');
    await Promise.all([calls[0], calls[1], calls[3], calls[4]]);
    expect(order).toEqual([1, 2, 4, 5]);
    const sent = agent.received.filter((cmd) => cmd.execute === 'test-echo').map((cmd) => cmd.arguments?.n);
    expect(sent).toEqual([1, 2, 4, 5]);
  });

  it('takes only the answer that follows a 0xFF as the end of a resynchronisation', async () => {
    // An agent answering guest-sync-delimited without the sentinel: the id matches, but the stream may still hold
    // anything before it, so the channel must not call itself in step.
    agent.handler = (cmd, a) =>
      cmd.execute === 'guest-sync-delimited' ? JSON.stringify({ return: cmd.arguments?.id }) : defaultFakeHandler(cmd, a);
    await expect(asCallerSees(channel.command('{"execute":"guest-ping"}', { signal: live() }))).rejects.toBeInstanceOf(GatewayError);
    expect(agent.inputLog).not.toContain('guest-ping');
    expect(channel.state).not.toBe('connected');
  });

  it('sync() reports an in-step channel without sending 0xFF', async () => {
    await channel.command('{"execute":"guest-ping"}', { signal: live() });
    const report = await channel.sync('guest-sync-delimited', { signal: live() });
    expect(report).toMatchObject({ command: 'guest-sync-delimited', inStep: true, staleReplies: 0, discardedBytes: 0 });
    // The id reported is the one the agent was sent (a random 31-bit one).
    expect(agent.received.at(-1)).toMatchObject({ execute: 'guest-sync-delimited', arguments: { id: report.id } });
    expect(report.id).toBeLessThan(2 ** 31);
    expect(agent.inputLog).toEqual([...RESYNC, 'guest-ping', 'guest-sync-delimited']);
    const plain = await channel.sync('guest-sync', { signal: live() });
    expect(plain).toMatchObject({ command: 'guest-sync', inStep: true });
    expect(plain.id).not.toBe(report.id);
  });

  it('sync() reports what it found (a late reply) and leaves the channel in step', async () => {
    agent.delayMs = (cmd) => (cmd.arguments?.slow ? 150 : 0);
    await channel.command('{"execute":"guest-ping"}', { signal: live() });
    const deadline = new AbortController();
    const late = channel.command(echo({ slow: true }), { signal: deadline.signal });
    setTimeout(() => deadline.abort(new Error('deadline')), 20);
    await expect(late).rejects.toThrow('deadline');
    const report = await channel.sync('guest-sync', { signal: live() });
    expect(report).toMatchObject({ inStep: false, staleReplies: 1, discardedBytes: 0 });
    expect(report.roundTripMs).toBeGreaterThan(50);
    expect(channel.state).toBe('connected');
    expect(parse(await channel.command(echo({ after: 1 }), { signal: live() }))).toEqual({ return: { after: 1 } });
    // No resynchronisation was needed after the sync.
    expect(agent.inputLog.slice(-2)).toEqual(['guest-sync', 'test-echo']);
  });

  it('sync() gets through a parser left inside an unfinished command by resynchronising', async () => {
    const previous = await connectRaw(agent.path);
    previous.write('{"execute":"guest-pi');
    await leaveCleanly(previous);
    const report = await channel.sync('guest-sync-delimited', { signal: live() });
    expect(report.inStep).toBe(false);
    expect(report.staleReplies).toBeGreaterThanOrEqual(1);
    expect(agent.inputLog).toContain('FF');
    expect(channel.state).toBe('connected');
  });

  it('answers agent_busy within syncTimeoutMs while another client holds the socket, then works once it leaves', async () => {
    const holder = await connectRaw(agent.path);
    await agent.waitFor(() => agent.servedClients === 1);
    const started = Date.now();
    const err = await expectCode(channel.command('{"execute":"guest-ping"}', { signal: live() }), 'agent_busy');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(SYNC_MS - 20);
    expect(elapsed).toBeLessThan(SYNC_MS + 700);
    expect(err.message).toMatch(/another client/);
    expect(err.message).toMatch(/not running in the guest/);
    expect(err.extras.retryAfter).toBe(5);
    expect(agent.waitingClients).toBe(1);
    expect(channel.state).toBe('disconnected');
    await leaveCleanly(holder);
    expect(parse(await channel.command('{"execute":"guest-ping"}', { signal: live() }))).toEqual({ return: {} });
    expect(channel.state).toBe('connected');
  });

  it('answers agent_busy for a silent agent on a fresh connection, agent_unresponsive once established', async () => {
    agent.silent = true;
    await expectCode(channel.command('{"execute":"guest-ping"}', { signal: live() }), 'agent_busy');
    agent.silent = false;
    expect(parse(await channel.command('{"execute":"guest-ping"}', { signal: live() }))).toEqual({ return: {} });
    agent.silent = true;
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(new Error('deadline')), 50);
    await expect(channel.command('{"execute":"guest-ping"}', { signal: deadline.signal })).rejects.toThrow('deadline');
    await expectCode(channel.command('{"execute":"guest-ping"}', { signal: live() }), 'agent_unresponsive');
  });

  it('reconnects after the agent socket goes away and comes back', async () => {
    await channel.command('{"execute":"guest-ping"}', { signal: live() });
    await agent.stop();
    await vi.waitFor(() => expect(channel.state).toBe('disconnected'));
    await expectCode(channel.command('{"execute":"guest-ping"}', { signal: live() }), 'agent_not_connected');
    await agent.restart();
    // The failed attempt started a backoff (125-250 ms): calls meanwhile fail at once, then one gets through.
    const started = Date.now();
    let reply: string | null = null;
    while (reply === null) {
      try {
        reply = await channel.command('{"execute":"guest-ping"}', { signal: live() });
      } catch (err) {
        expect((seenByCaller(err) as GatewayError).code).toBe('agent_not_connected');
        expect(Date.now() - started).toBeLessThan(1000);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(parse(reply)).toEqual({ return: {} });
    expect(agent.connectionsAccepted).toBe(2);
  });

  it('close() rejects the running and waiting calls and later ones, and leaves no timers or sockets', async () => {
    const resources = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r.startsWith('Pipe') || r === 'TCPWRAP');
    await channel.close();
    await agent.dispose();
    const before = resources();
    agent = await FakeAgentSocket.start();
    channel = channelFor(agent.path);
    agent.delayMs = 5000;
    const running = expectCode(channel.command(echo({ n: 1 }), { signal: live() }), 'shutting_down');
    const waiting = expectCode(channel.command(echo({ n: 2 }), { signal: live() }), 'shutting_down');
    await agent.waitFor(() => agent.received.length === 1);
    await channel.close();
    await running;
    await waiting;
    await expectCode(channel.command('{"execute":"guest-ping"}', { signal: live() }), 'shutting_down');
    await expectCode(channel.sync('guest-sync', { signal: live() }), 'shutting_down');
    expect(channel.state).toBe('disconnected');
    await agent.waitFor(() => agent.openClients === 0, 2000, 'the agent to see the client leave');
    await agent.dispose();
    expect(resources()).toEqual(before);
  });
});

describe('AgentSocketChannel without an agent', () => {
  it('answers agent_not_connected at once when nothing listens, and backs off between attempts', async () => {
    const agent = await FakeAgentSocket.start();
    const notASocket = path.join(agent.dir, 'plain-file');
    await writeFile(notASocket, '');
    const connects = vi.spyOn(net, 'createConnection');
    try {
      for (const p of [path.join(agent.dir, 'missing.sock'), notASocket]) {
        const channel = channelFor(p);
        const started = Date.now();
        const err = await expectCode(channel.command('{"execute":"guest-ping"}', { signal: live() }), 'agent_not_connected');
        expect(err.message).toMatch(p.endsWith('missing.sock') ? /no such socket/ : /nothing is listening/);
        expect(err.extras.retryAfter).toBe(5);
        expect(Date.now() - started).toBeLessThan(200);
        const attempts = connects.mock.calls.length;
        // Within the backoff: refused at once, without a new attempt.
        const again = await expectCode(channel.command('{"execute":"guest-ping"}', { signal: live() }), 'agent_not_connected');
        expect(again.message).toMatch(/next attempt in \d+ ms/);
        expect(connects.mock.calls.length).toBe(attempts);
        await channel.close();
      }
    } finally {
      connects.mockRestore();
      await agent.dispose();
    }
  });
});
