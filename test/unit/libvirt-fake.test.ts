// The fake libvirtd's own behaviour that other tests rely on: libvirtd's limits, agent semantics, clean stop.
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LibvirtConnection } from '../../src/libvirt/connection.js';
import { ConnectionError, LibvirtError } from '../../src/libvirt/errors.js';
import { PacketDecoder, type Packet } from '../../src/libvirt/framing.js';
import { Qemu, QemuProc, Remote, RemoteProc } from '../../src/libvirt/procedures.js';
import {
  AuthType,
  MessageStatus,
  MessageType,
  Program,
  VirErrorCode,
  decode,
  encode,
  encodePacket,
  remoteErrorCodec,
  uuidFromString,
  type RemoteError,
} from '../../src/libvirt/protocol.js';
import { DomainState, FakeLibvirtd, domainXml, waitFor, type FakeDomain, type FakeLibvirtdOptions } from '../support/fake-libvirtd.js';

let fake: FakeLibvirtd | null = null;
const opened: LibvirtConnection[] = [];

afterEach(async () => {
  for (const c of opened.splice(0)) c.destroy(new ConnectionError('test over'));
  await fake?.stop();
  fake = null;
});

async function setup(opts: FakeLibvirtdOptions = {}) {
  fake = await FakeLibvirtd.start(opts);
  const conn = await LibvirtConnection.open(fake.connectionOptions());
  opened.push(conn);
  return { fake, conn };
}

function agent(conn: LibvirtConnection, d: FakeDomain, cmd: string, timeout = -1) {
  return conn.call(Qemu.DOMAIN_AGENT_COMMAND, { dom: { name: d.name, uuid: uuidFromString(d.uuid), id: d.id }, cmd, timeout, flags: 0 });
}

/** A hand-driven client: one call at a time, no handshake, to reach states LibvirtConnection never does. */
async function rawClient(f: FakeLibvirtd) {
  const socket = net.connect({ path: f.socketPath! });
  await new Promise((r) => socket.once('connect', r));
  const decoder = new PacketDecoder();
  const packets: Packet[] = [];
  socket.on('data', (chunk: Buffer) => packets.push(...decoder.push(chunk)));
  let serial = 1;
  return {
    socket,
    async call(procedure: number, body: Buffer = Buffer.alloc(0)): Promise<{ status: number; error: RemoteError | null }> {
      const s = serial++;
      socket.write(
        encodePacket({ program: Program.REMOTE, version: 1, procedure, type: MessageType.CALL, serial: s, status: MessageStatus.OK }, body),
      );
      await waitFor(() => packets.some((p) => p.header.serial === s), 5000, `reply ${s}`);
      const p = packets.find((x) => x.header.serial === s)!;
      return { status: p.header.status, error: p.header.status === MessageStatus.ERROR ? decode(remoteErrorCodec, p.body) : null };
    },
  };
}

/** A handler whose every command waits until released; records how many run at once. */
function gatedHandler() {
  const waiting: Array<() => void> = [];
  let running = 0;
  let peak = 0;
  return {
    handler: async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((r) => waiting.push(r));
      running--;
      return { return: {} };
    },
    get waiting() {
      return waiting.length;
    },
    get peak() {
      return peak;
    },
    releaseAll: () => {
      for (const r of waiting.splice(0)) r();
    },
  };
}

describe('FakeLibvirtd', () => {
  it('runs at most maxClientRequests (default 5) calls per connection, the rest in order after', async () => {
    const { fake, conn } = await setup();
    const doms = Array.from({ length: 8 }, (_, i) => fake.addDomain({ name: `d${i}` }));
    const gate = gatedHandler();
    fake.agentHandler = gate.handler;
    const calls = doms.map((d) => agent(conn, d, '{"execute":"guest-ping"}'));
    await waitFor(() => gate.waiting === 5, 5000, '5 running commands');
    await new Promise((r) => setTimeout(r, 30));
    expect(gate.waiting).toBe(5);
    expect(fake.clients[0]!.inFlight).toBe(8);
    while (gate.waiting > 0 || fake.agentCommandCount < 8) {
      gate.releaseAll();
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(calls);
    expect(gate.peak).toBe(5);
    expect(fake.agentLog.map((e) => e.domain)).toEqual(doms.map((d) => d.name));
  });

  it('runs one agent command per domain at a time and records what the client sent concurrently', async () => {
    const { fake, conn } = await setup({ maxClientRequests: Infinity });
    const d = fake.addDomain({ name: 'vm' });
    const gate = gatedHandler();
    fake.agentHandler = gate.handler;
    const calls = [1, 2, 3].map(() => agent(conn, d, '{"execute":"guest-ping"}'));
    await waitFor(() => fake.agentInFlight('vm') === 3 && gate.waiting === 1, 5000, 'three in flight, one running');
    while (fake.agentInFlight('vm') > 0) {
      gate.releaseAll();
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(calls);
    expect(gate.peak).toBe(1);
    expect(fake.agentPeakInFlight('vm')).toBe(3);
  });

  it('fails an agent command that waits too long for the domain job with error 68', async () => {
    const { fake, conn } = await setup({ maxClientRequests: Infinity, agentJobWaitMs: 50 });
    const d = fake.addDomain({ name: 'vm' });
    const gate = gatedHandler();
    fake.agentHandler = gate.handler;
    const first = agent(conn, d, '{"execute":"guest-ping"}', -2);
    await waitFor(() => gate.waiting === 1, 5000, 'the first command running');
    const err = await agent(conn, d, '{"execute":"guest-ping"}').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: VirErrorCode.OPERATION_TIMEOUT, message: expect.stringMatching(/cannot acquire state change lock/) });
    gate.releaseAll();
    await first;
  });

  it('words agent and argument errors as libvirt does', async () => {
    const { fake, conn } = await setup();
    const d = fake.addDomain({ name: 'vm' });
    fake.agentHandler = (_d, c) =>
      c.execute === 'lv'
        ? { libvirtError: { code: 86, message: 'Guest agent is not responding: Guest agent disappeared while executing command' } }
        : { error: { class: 'GenericError' } };
    await expect(agent(conn, d, 'not json')).rejects.toMatchObject({
      code: 1,
      message: expect.stringMatching(/^internal error: cannot parse json not json: /),
    });
    await expect(agent(conn, d, '{"arguments":{}}')).rejects.toMatchObject({
      code: 1,
      message: "internal error: unable to execute QEMU agent command '<unknown>': QMP input lacks member 'execute'",
    });
    await expect(agent(conn, d, '{"execute":"x"}')).rejects.toMatchObject({
      code: 1,
      message: "internal error: unable to execute QEMU agent command 'x': GenericError",
    });
    await expect(agent(conn, d, '{"execute":"lv"}')).rejects.toMatchObject({ code: 86, message: /disappeared/ });
    await expect(agent(conn, d, '{"execute":"x"}', -3)).rejects.toMatchObject({ code: 8 });
    fake.setState('vm', DomainState.PAUSED);
    await expect(agent(conn, d, '{"execute":"x"}')).rejects.toMatchObject({ code: VirErrorCode.OPERATION_INVALID });
    const ghost: FakeDomain = { ...d, name: 'ghost', uuid: '00000000-0000-0000-0000-000000000000' };
    await expect(agent(conn, ghost, '{"execute":"x"}')).rejects.toMatchObject({
      code: 42,
      message: "Domain not found: no domain with matching uuid '00000000-0000-0000-0000-000000000000' (ghost)",
    });
  });

  it('filters CONNECT_LIST_ALL_DOMAINS by active / inactive and honours needResults', async () => {
    const { fake, conn } = await setup();
    fake.addDomain({ name: 'on' });
    fake.addDomain({ name: 'off', state: DomainState.SHUTOFF });
    const list = (needResults: number, flags: number) => conn.call(Remote.CONNECT_LIST_ALL_DOMAINS, { needResults, flags });
    expect((await list(1, 1)).domains.map((d) => d.name)).toEqual(['on']);
    expect((await list(1, 2)).domains.map((d) => d.name)).toEqual(['off']);
    expect((await list(1, 0)).ret).toBe(2);
    expect(await list(0, 0)).toEqual({ domains: [], ret: 2 });
  });

  it('refuses calls before authentication and before CONNECT_OPEN, as libvirtd does', async () => {
    fake = await FakeLibvirtd.start({ authTypes: [AuthType.POLKIT] });
    const raw = await rawClient(fake);
    const open = encode(Remote.CONNECT_OPEN.args, { name: 'qemu:///system', flags: 0 });
    expect(await raw.call(RemoteProc.CONNECT_OPEN, open)).toMatchObject({
      status: 1,
      error: { code: 39, message: 'RPC error: authentication required' },
    });
    expect(await raw.call(RemoteProc.AUTH_POLKIT)).toMatchObject({ status: 0 });
    const lookupArgs = encode(Remote.DOMAIN_LOOKUP_BY_NAME.args, { name: 'x' });
    expect(await raw.call(RemoteProc.DOMAIN_LOOKUP_BY_NAME, lookupArgs)).toMatchObject({
      status: 1,
      error: { message: 'internal error: connection not open' },
    });
    expect(await raw.call(RemoteProc.CONNECT_OPEN, open)).toMatchObject({ status: 0 });
    expect(await raw.call(RemoteProc.DOMAIN_LOOKUP_BY_NAME, lookupArgs)).toMatchObject({ status: 1, error: { code: 42 } });
    raw.socket.destroy();
  });

  it('sends events only to matching callbacks and stops after DEREGISTER_ANY', async () => {
    const { fake, conn } = await setup();
    const a = fake.addDomain({ name: 'a' });
    fake.addDomain({ name: 'b' });
    const register = (eventID: number, dom: FakeDomain | null) =>
      conn.call(Remote.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, {
        eventID,
        dom: dom && { name: dom.name, uuid: uuidFromString(dom.uuid), id: dom.id },
      });
    const onlyA = await register(0, a);
    expect(fake.emitLifecycle('a', 2)).toBe(1);
    expect(fake.emitLifecycle('b', 2)).toBe(0);
    expect(fake.emitAgentLifecycle('a', 1)).toBe(0);
    await conn.call(Remote.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, onlyA);
    expect(fake.emitLifecycle('a', 2)).toBe(0);
    await expect(conn.call(Remote.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, onlyA)).rejects.toMatchObject({ code: 1 });
  });

  it('generates domain XML with the agent channel only when configured, escaped', () => {
    const d: FakeDomain = { name: "a<b>&'c", uuid: '5f3c0e7a-1b2c-4d5e-8f90-112233445566', id: 3, state: 1, reason: 1, agent: 'connected' };
    const xml = domainXml(d);
    expect(xml).toContain("<domain type='kvm' id='3'>");
    expect(xml).toContain('<name>a&lt;b&gt;&amp;&apos;c</name>');
    expect(domainXml({ ...d, agent: 'none' })).not.toContain('<channel');
  });

  it('reset() releases held replies and restores defaults for a fake shared across tests', async () => {
    const { fake, conn } = await setup();
    const d = fake.addDomain({ name: 'vm' });
    fake.agentHandler = () => ({ return: 'custom' });
    const hold = fake.holdReplies({ program: Program.QEMU, procedure: QemuProc.DOMAIN_AGENT_COMMAND });
    const pending = agent(conn, d, '{"execute":"guest-ping"}');
    await hold.waitUntilHeld(1);
    fake.injectError(RemoteProc.DOMAIN_LOOKUP_BY_NAME, { code: 1, message: 'internal error: injected' });
    fake.reset({ keepDomains: true });
    expect(JSON.parse((await pending).result!)).toEqual({ return: 'custom' });
    expect(fake.calls).toEqual([]);
    expect(fake.agentCommandCount).toBe(0);
    expect(JSON.parse((await agent(conn, d, '{"execute":"guest-ping"}')).result!)).toEqual({ return: {} });
    const found = await conn.call(Remote.DOMAIN_LOOKUP_BY_NAME, { name: 'vm' });
    expect(found.dom.name).toBe('vm');
    fake.reset();
    expect(fake.domains).toEqual([]);
  });

  it('removes its temp dir and socket on stop(), and stop() is idempotent', async () => {
    fake = await FakeLibvirtd.start();
    const sock = fake.socketPath!;
    expect(existsSync(sock)).toBe(true);
    await fake.stop();
    expect(existsSync(path.dirname(sock))).toBe(false);
    await fake.stop();
  });
});
