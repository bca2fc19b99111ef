// LibvirtConnection against the fake libvirtd, over real unix and TCP sockets.
import { afterEach, describe, expect, it } from 'vitest';
import { LibvirtConnection, type ConnectionOptions } from '../../src/libvirt/connection.js';
import { ConnectionError, LibvirtError } from '../../src/libvirt/errors.js';
import { Qemu, QemuProc, Remote, RemoteProc } from '../../src/libvirt/procedures.js';
import {
  AuthType,
  DomainEventId,
  MessageType,
  Program,
  VirErrorCode,
  decode,
  uuidFromString,
  voidCodec,
  type WireDomain,
} from '../../src/libvirt/protocol.js';
import { DomainState, FakeLibvirtd, waitFor, type FakeDomain, type FakeLibvirtdOptions } from '../support/fake-libvirtd.js';

let fake: FakeLibvirtd | null = null;
const opened: LibvirtConnection[] = [];

afterEach(async () => {
  for (const c of opened.splice(0)) c.destroy(new ConnectionError('test over'));
  await fake?.stop();
  fake = null;
});

async function startFake(opts: FakeLibvirtdOptions = {}): Promise<FakeLibvirtd> {
  fake = await FakeLibvirtd.start(opts);
  fake.addDomain({ name: 'vm1' });
  return fake;
}

async function open(overrides: Partial<ConnectionOptions> = {}): Promise<LibvirtConnection> {
  const conn = await LibvirtConnection.open(fake!.connectionOptions(overrides));
  opened.push(conn);
  return conn;
}

const wire = (d: FakeDomain): WireDomain => ({ name: d.name, uuid: uuidFromString(d.uuid), id: d.id });

function agent(conn: LibvirtConnection, dom: FakeDomain, cmd: unknown, signal?: AbortSignal) {
  const text = typeof cmd === 'string' ? cmd : JSON.stringify(cmd);
  return conn.call(Qemu.DOMAIN_AGENT_COMMAND, { dom: wire(dom), cmd: text, timeout: -1, flags: 0 }, signal);
}

function lookup(conn: LibvirtConnection, name: string, signal?: AbortSignal) {
  return conn.call(Remote.DOMAIN_LOOKUP_BY_NAME, { name }, signal);
}

function xmlDesc(conn: LibvirtConnection, dom: FakeDomain) {
  return conn.call(Remote.DOMAIN_GET_XML_DESC, { dom: wire(dom), flags: 0 });
}

/** Settles a promise into a value for assertions without unhandled rejections. */
function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

describe('LibvirtConnection.open', () => {
  it('connects over a unix socket: AUTH_LIST, CONNECT_OPEN, keepalive feature, then calls work', async () => {
    await startFake();
    const conn = await open();
    expect(conn.isOpen).toBe(true);
    expect(fake!.calls.map((c) => c.procedure)).toEqual([
      RemoteProc.AUTH_LIST,
      RemoteProc.CONNECT_OPEN,
      RemoteProc.CONNECT_SUPPORTS_FEATURE,
    ]);
    const [client] = fake!.clients;
    expect(client).toMatchObject({ opened: true, openedName: 'qemu:///system', keepaliveRequested: true });
    const { dom } = await lookup(conn, 'vm1');
    expect(dom.name).toBe('vm1');
    expect(dom.uuid).toEqual(uuidFromString(fake!.domain('vm1').uuid));
    expect(dom.id).toBe(fake!.domain('vm1').id);
  });

  it('connects over TCP', async () => {
    await startFake({ tcp: true });
    expect(fake!.port).toBeGreaterThan(0);
    expect(fake!.socketPath).toBeNull();
    const conn = await open();
    expect((await lookup(conn, 'vm1')).dom.name).toBe('vm1');
    expect(fake!.connectionCount).toBe(1);
  });

  it('authenticates with polkit when AUTH_LIST offers only polkit', async () => {
    await startFake({ authTypes: [AuthType.POLKIT] });
    const conn = await open();
    expect(fake!.calls.map((c) => c.procedure)).toEqual([
      RemoteProc.AUTH_LIST,
      RemoteProc.AUTH_POLKIT,
      RemoteProc.CONNECT_OPEN,
      RemoteProc.CONNECT_SUPPORTS_FEATURE,
    ]);
    expect(fake!.clients[0]!.authenticated).toBe(true);
    expect((await lookup(conn, 'vm1')).dom.name).toBe('vm1');
  });

  it('prefers no authentication when AUTH_LIST offers none besides polkit', async () => {
    await startFake({ authTypes: [AuthType.NONE, AuthType.POLKIT] });
    await open();
    expect(fake!.callCount(RemoteProc.AUTH_POLKIT)).toBe(0);
  });

  it('refuses SASL-only daemons with a clear error and opens nothing', async () => {
    await startFake({ authTypes: [AuthType.SASL] });
    const err = await LibvirtConnection.open(fake!.connectionOptions()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/authentication method this client lacks \(types 1\); SASL is not supported/);
    expect(fake!.callCount(RemoteProc.CONNECT_OPEN)).toBe(0);
    await waitFor(() => fake!.connectionCount === 0, 5000, 'the socket to close');
  });

  it('rejects with the libvirt error when polkit denies access', async () => {
    await startFake({ authTypes: [AuthType.POLKIT], polkitDenied: true });
    const err = await LibvirtConnection.open(fake!.connectionOptions()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(45);
    expect((err as Error).message).toMatch(/access denied/);
    await waitFor(() => fake!.connectionCount === 0, 5000, 'the socket to close');
  });

  it('rejects with the libvirt error when CONNECT_OPEN fails, and closes the socket', async () => {
    await startFake();
    fake!.injectError(RemoteProc.CONNECT_OPEN, {
      code: 38,
      message: 'Failed to connect socket to /run/libvirt/virtqemud-sock: No such file or directory',
    });
    const err = await LibvirtConnection.open(fake!.connectionOptions()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: 38, message: expect.stringMatching(/virtqemud-sock/) });
    await waitFor(() => fake!.connectionCount === 0, 5000, 'the socket to close');
  });

  it('rejects with ConnectionError when nothing listens on the socket', async () => {
    await startFake();
    const err = await LibvirtConnection.open(
      fake!.connectionOptions({ transport: { kind: 'unix', path: `${fake!.socketPath!}-missing` } }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/cannot connect to libvirtd at .*-missing/);
  });

  it('rejects with ConnectionError when the daemon hangs up during the handshake', async () => {
    await startFake();
    fake!.acceptConnections = false;
    const err = await LibvirtConnection.open(fake!.connectionOptions()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
  });

  it('gives up on a handshake that gets no answer within connectTimeoutMs', async () => {
    await startFake();
    fake!.holdReplies(RemoteProc.AUTH_LIST);
    const err = await LibvirtConnection.open(fake!.connectionOptions({ connectTimeoutMs: 200 })).catch((e: unknown) => e);
    // A ConnectionError that says where and why, so that the pool's lastError and /readyz can tell.
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/no answer within 200 ms/);
    expect((err as Error).message).toContain(fake!.socketPath!);
    await waitFor(() => fake!.connectionCount === 0, 5000, 'the socket to close');
  });
});

describe('LibvirtConnection calls', () => {
  it('matches replies that come out of order to their callers (held reply)', async () => {
    await startFake();
    const conn = await open();
    const hold = fake!.holdReplies(RemoteProc.DOMAIN_GET_XML_DESC);
    const done: string[] = [];
    const slow = xmlDesc(conn, fake!.domain('vm1')).then((r) => {
      done.push('xml');
      return r;
    });
    await hold.waitUntilHeld(1);
    const quick = lookup(conn, 'vm1').then((r) => {
      done.push('lookup');
      return r;
    });
    expect((await quick).dom.name).toBe('vm1');
    expect(done).toEqual(['lookup']);
    hold.release();
    expect((await slow).xml).toContain('<name>vm1</name>');
    expect(done).toEqual(['lookup', 'xml']);
  });

  it('matches replies that come out of order to their callers (delayed reply)', async () => {
    await startFake();
    const conn = await open();
    fake!.setReplyDelay(RemoteProc.DOMAIN_GET_XML_DESC, 500);
    const done: string[] = [];
    const slow = xmlDesc(conn, fake!.domain('vm1')).then((r) => {
      done.push('xml');
      return r;
    });
    const quick = lookup(conn, 'vm1').then((r) => {
      done.push('lookup');
      return r;
    });
    const [x, l] = await Promise.all([slow, quick]);
    expect(done).toEqual(['lookup', 'xml']);
    expect(x.xml).toContain("name='org.qemu.guest_agent.0' state='connected'");
    expect(l.dom.name).toBe('vm1');
  });

  it('gives each of 200 concurrent calls its own result or error, replies arriving scrambled', async () => {
    await startFake({ maxClientRequests: Infinity });
    const doms = Array.from({ length: 8 }, (_, i) => fake!.addDomain({ name: `d${i}` }));
    const off = fake!.addDomain({ name: 'off', state: DomainState.SHUTOFF });
    const noAgent = fake!.addDomain({ name: 'noagent', agent: 'none' });
    fake!.agentHandler = async (domain, command) => {
      const args = command.arguments as { id: number };
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 8)));
      if (command.execute === 'echo') return { return: { id: args.id, domain: domain.name } };
      return { error: { class: 'GenericError', desc: `failure ${args.id}` } };
    };
    const conn = await open();
    const order: number[] = [];
    const calls = Array.from({ length: 200 }, (_, id) => {
      const dom = doms[id % doms.length]!;
      let p: Promise<unknown>;
      switch (id % 5) {
        case 0:
        case 1:
          p = agent(conn, dom, { execute: 'echo', arguments: { id } });
          break;
        case 2:
          p = agent(conn, dom, { execute: 'fail', arguments: { id } });
          break;
        case 3:
          p = agent(conn, id % 2 ? off : noAgent, { execute: 'echo', arguments: { id } });
          break;
        default:
          p = lookup(conn, `missing-${id}`);
      }
      return settle(p.finally(() => order.push(id)));
    });
    expect(conn.inFlight).toBe(200);
    const results = await Promise.all(calls);
    expect(conn.inFlight).toBe(0);
    results.forEach((r, id) => {
      const dom = doms[id % doms.length]!;
      switch (id % 5) {
        case 0:
        case 1:
          expect(r.ok, `call ${id}`).toBe(true);
          if (r.ok) expect(JSON.parse((r.value as { result: string }).result)).toEqual({ return: { id, domain: dom.name } });
          break;
        case 2:
          expect(r).toMatchObject({
            ok: false,
            error: { code: 1, message: `internal error: unable to execute QEMU agent command 'fail': failure ${id}` },
          });
          break;
        case 3:
          expect(r).toMatchObject(
            id % 2
              ? {
                  ok: false,
                  error: { code: VirErrorCode.OPERATION_INVALID, message: 'Requested operation is not valid: domain is not running' },
                }
              : {
                  ok: false,
                  error: { code: VirErrorCode.ARGUMENT_UNSUPPORTED, message: 'argument unsupported: QEMU guest agent is not configured' },
                },
          );
          break;
        default:
          expect(r).toMatchObject({
            ok: false,
            error: { code: VirErrorCode.NO_DOMAIN, message: `Domain not found: no domain with matching name 'missing-${id}'` },
          });
      }
      if (!r.ok) expect(r.error).toBeInstanceOf(LibvirtError);
    });
    // The replies really did come back in another order than the calls went out.
    expect(order).not.toEqual([...order].sort((a, b) => a - b));
    expect(fake!.agentCommandCount).toBe(120);
  });

  it('decodes error replies into LibvirtError with code, domain and message, for the right caller', async () => {
    await startFake();
    const conn = await open();
    const [bad, good, unknown] = await Promise.all([
      settle(lookup(conn, 'nope')),
      settle(lookup(conn, 'vm1')),
      settle(
        conn.call(
          { kind: 'call', name: 'REMOTE_PROC_9999', program: Program.REMOTE, procedure: 9999, args: voidCodec, ret: voidCodec },
          undefined,
        ),
      ),
    ]);
    expect(bad.ok).toBe(false);
    const err = (bad as { error: LibvirtError }).error;
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err.code).toBe(42);
    expect(err.domain).toBe(10);
    expect(err.message).toBe("Domain not found: no domain with matching name 'nope'");
    expect(good).toMatchObject({ ok: true, value: { dom: { name: 'vm1' } } });
    expect(unknown).toMatchObject({ ok: false, error: { code: VirErrorCode.NO_SUPPORT } });
    expect(conn.isOpen).toBe(true);
  });

  it('rejects a reply it cannot decode with ConnectionError and keeps the connection', async () => {
    await startFake();
    const conn = await open();
    const dom = wire(fake!.domain('vm1'));
    // DOMAIN_GET_STATE answers 8 bytes; decoding them as a lifecycle message runs out of data.
    const err = await conn
      .call({ ...Remote.DOMAIN_GET_STATE, ret: Remote.DOMAIN_EVENT_CALLBACK_LIFECYCLE.body }, { dom, flags: 0 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/malformed reply to procedure 212/);
    expect((await lookup(conn, 'vm1')).dom.name).toBe('vm1');
  });

  it('fails every call in flight with ConnectionError when the socket drops, and later calls at once', async () => {
    await startFake();
    const conn = await open();
    const closeReasons: Error[] = [];
    conn.on('close', (e) => closeReasons.push(e));
    const hold = fake!.holdReplies(() => true);
    const dom = fake!.domain('vm1');
    const inFlight = [
      settle(agent(conn, dom, { execute: 'guest-ping' })),
      settle(agent(conn, dom, { execute: 'guest-info' })),
      settle(lookup(conn, 'vm1')),
      settle(xmlDesc(conn, dom)),
    ];
    await hold.waitUntilHeld(2);
    fake!.dropClients();
    const results = await Promise.all(inFlight);
    for (const r of results) {
      expect(r.ok).toBe(false);
      expect((r as { error: unknown }).error).toBeInstanceOf(ConnectionError);
    }
    expect(conn.isOpen).toBe(false);
    expect(conn.inFlight).toBe(0);
    expect(closeReasons).toHaveLength(1);
    expect(closeReasons[0]).toBeInstanceOf(ConnectionError);
    const callsBefore = fake!.calls.length;
    const later = await settle(lookup(conn, 'vm1'));
    expect(later).toMatchObject({ ok: false, error: expect.any(ConnectionError) });
    expect(fake!.calls.length).toBe(callsBefore);
  });

  it('closes politely with CONNECT_CLOSE; later calls reject', async () => {
    await startFake();
    const conn = await open();
    await conn.close();
    expect(fake!.callCount(RemoteProc.CONNECT_CLOSE)).toBe(1);
    expect(conn.isOpen).toBe(false);
    await waitFor(() => fake!.connectionCount === 0, 5000, 'the socket to close');
    await expect(lookup(conn, 'vm1')).rejects.toThrow(ConnectionError);
    await conn.close(); // idempotent
  });

  it('closes within its bound even when CONNECT_CLOSE gets no answer', async () => {
    await startFake();
    const conn = await open();
    fake!.holdReplies(RemoteProc.CONNECT_CLOSE);
    await conn.close(100);
    expect(conn.isOpen).toBe(false);
  });

  it('drops the connection on a corrupt packet length from the daemon', async () => {
    await startFake();
    const conn = await open();
    const closed = new Promise<Error>((resolve) => conn.once('close', resolve));
    const pending = settle(lookup(conn, 'vm1'));
    fake!.sendRaw(Buffer.from([0, 0, 0, 3]));
    const reason = await closed;
    expect(reason).toBeInstanceOf(ConnectionError);
    expect(reason.message).toMatch(/protocol error from libvirtd: invalid packet length 3/);
    // The lookup's reply may or may not have beaten the garbage; either way the caller got an answer.
    const r = await pending;
    if (!r.ok) expect(r.error).toBeInstanceOf(ConnectionError);
  });

  it.each([
    ['byte by byte', { splitWrites: 'bytes' as const, coalesce: false }],
    ['in random pieces', { splitWrites: 'random' as const, coalesce: false }],
    ['coalesced into single writes', { splitWrites: false as const, coalesce: true }],
    ['coalesced and split', { splitWrites: 'random' as const, coalesce: true }],
  ])('reassembles replies written %s', async (_, mode) => {
    await startFake({ maxClientRequests: Infinity });
    Object.assign(fake!, mode);
    const conn = await open(); // the handshake goes through the same path
    const names = Array.from({ length: 30 }, (_, i) => fake!.addDomain({ name: `vm-${i}-${'x'.repeat(i)}` }).name);
    const got = await Promise.all(names.map((n) => lookup(conn, n)));
    expect(got.map((g) => g.dom.name)).toEqual(names);
    const reply = await agent(conn, fake!.domain('vm1'), { execute: 'guest-info' });
    expect(JSON.parse(reply.result!).return.supported_commands.length).toBeGreaterThan(3);
  });

  it('emits unsolicited MESSAGE packets as events', async () => {
    await startFake();
    const conn = await open();
    const { callbackID } = await conn.call(Remote.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, {
      eventID: DomainEventId.LIFECYCLE,
      dom: null,
    });
    const event = new Promise<import('../../src/libvirt/framing.js').Packet>((resolve) => conn.once('event', resolve));
    expect(fake!.emitLifecycle('vm1', 5, 1)).toBe(1);
    const { header, body } = await event;
    expect(header).toMatchObject({
      program: Program.REMOTE,
      type: MessageType.MESSAGE,
      procedure: RemoteProc.DOMAIN_EVENT_CALLBACK_LIFECYCLE,
    });
    expect(decode(Remote.DOMAIN_EVENT_CALLBACK_LIFECYCLE.body, body)).toMatchObject({
      callbackID,
      event: 5,
      detail: 1,
      dom: { name: 'vm1' },
    });
  });
});

describe('LibvirtConnection keepalive', () => {
  it('answers a PING from the daemon with a PONG', async () => {
    await startFake();
    const conn = await open();
    fake!.sendKeepalivePing();
    fake!.sendKeepalivePing();
    await waitFor(() => fake!.pongsReceived === 2, 5000, 'two PONGs');
    expect(conn.isOpen).toBe(true);
  });

  it('pings an idle daemon and stays up while it answers', async () => {
    await startFake();
    const conn = await open({ keepaliveIntervalMs: 50, keepaliveCount: 10 });
    await waitFor(() => fake!.pingsReceived >= 3, 5000, 'three PINGs');
    expect(conn.isOpen).toBe(true);
  });

  it('sends no pings when keepaliveIntervalMs is 0', async () => {
    await startFake();
    await open({ keepaliveIntervalMs: 0 });
    await new Promise((r) => setTimeout(r, 150));
    expect(fake!.pingsReceived).toBe(0);
  });

  it('declares a daemon that stops answering dead after interval * (count + 1), failing calls in flight', async () => {
    await startFake();
    fake!.ignoreKeepalive = true;
    const conn = await open({ keepaliveIntervalMs: 50, keepaliveCount: 2 });
    const started = Date.now();
    const closed = new Promise<Error>((resolve) => conn.once('close', resolve));
    fake!.holdReplies(RemoteProc.DOMAIN_GET_XML_DESC);
    const pending = settle(xmlDesc(conn, fake!.domain('vm1')));
    const reason = await closed;
    const elapsed = Date.now() - started;
    expect(reason).toBeInstanceOf(ConnectionError);
    expect(reason.message).toMatch(/did not answer keepalive for \d+ ms/);
    expect(Number(/for (\d+) ms/.exec(reason.message)![1])).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeGreaterThanOrEqual(100); // loose: the exact silence is checked in the message above
    expect(fake!.pingsReceived).toBeGreaterThanOrEqual(1);
    expect(await pending).toMatchObject({ ok: false, error: reason });
  });
});

describe('LibvirtConnection AbortSignal', () => {
  it('rejects at once with an already aborted signal and sends nothing', async () => {
    await startFake();
    const conn = await open();
    const before = fake!.calls.length;
    const reason = new Error('already gone');
    await expect(lookup(conn, 'vm1', AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(conn.inFlight).toBe(0);
    await lookup(conn, 'vm1');
    expect(fake!.calls.length).toBe(before + 1);
  });

  it('rejects an aborted call at once, swallows its late reply, and the next call gets its own answer', async () => {
    await startFake();
    fake!.agentHandler = (_d, c) => ({ return: c.arguments });
    const conn = await open();
    const dom = fake!.domain('vm1');
    const hold = fake!.holdReplies({ program: Program.QEMU, procedure: QemuProc.DOMAIN_AGENT_COMMAND });
    const ac = new AbortController();
    const first = settle(agent(conn, dom, { execute: 'echo', arguments: 'first' }, ac.signal));
    await hold.waitUntilHeld(1);
    const reason = new Error('caller gave up');
    ac.abort(reason);
    expect(await first).toEqual({ ok: false, error: reason });
    // libvirtd still works on it: the call stays counted until its reply comes.
    expect(hold.held).toBe(1);
    expect(conn.inFlight).toBe(1);
    hold.release();
    await waitFor(() => conn.inFlight === 0, 5000, 'the late reply');
    const second = await agent(conn, dom, { execute: 'echo', arguments: 'second' });
    expect(JSON.parse(second.result!)).toEqual({ return: 'second' });
    expect(conn.isOpen).toBe(true);
  });

  it('rejects with the timeout reason of AbortSignal.timeout', async () => {
    await startFake();
    const conn = await open();
    fake!.holdReplies(RemoteProc.DOMAIN_LOOKUP_BY_NAME);
    const err = await lookup(conn, 'vm1', AbortSignal.timeout(30)).catch((e: unknown) => e);
    expect((err as Error).name).toBe('TimeoutError');
    expect(conn.isOpen).toBe(true);
  });

  it('ignores an abort after the call completed', async () => {
    await startFake();
    const conn = await open();
    const ac = new AbortController();
    expect((await lookup(conn, 'vm1', ac.signal)).dom.name).toBe('vm1');
    ac.abort();
    expect((await lookup(conn, 'vm1', ac.signal).catch((e: unknown) => e)) as Error).toBeInstanceOf(Error);
    expect(conn.isOpen).toBe(true);
  });
});
