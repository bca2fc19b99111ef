// Agent routes in process against the fake libvirtd: normalisation, error mapping, deadlines, the per-domain
// queue, clients that go away, and a graceful close.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { AgentLifecycleState } from '../../src/libvirt/protocol.js';
import { DomainState, defaultAgentHandler, waitFor, type AgentHandler, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { build, request } from '../support/harness.js';
import type { GatewayOverrides, TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;

async function setup(config: GatewayOverrides = {}) {
  ({ fake, gw } = await build({ domains: ['web1', 'web2'], config }));
  return gw;
}

const get = (url: string) => request(gw!, 'GET', url);

/** Commands sent to the agent, less the guest-info the gateway asks once per domain to learn what it offers. */
const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info');

/** Answers every command but guest-info (left to the fake's own) with the given reply. */
const answerAll =
  (reply: unknown): AgentHandler =>
  (dom, cmd, t) =>
    cmd.execute === 'guest-info' ? defaultAgentHandler(dom, cmd, t) : (reply as never);

/** Agent handler that answers one command only when released. */
function gated(execute: string) {
  const releases: (() => void)[] = [];
  const handler: AgentHandler = (dom, cmd, timeout) =>
    cmd.execute === execute
      ? new Promise((resolve) => releases.push(() => resolve(defaultAgentHandler(dom, cmd, timeout) as never)))
      : defaultAgentHandler(dom, cmd, timeout);
  const releaseAll = () => {
    for (const release of releases.splice(0)) release();
  };
  return { handler, releaseAll, pending: () => releases.length };
}

describe('GET /domains/{domain}/network-interfaces', () => {
  it('normalises the agent reply (recorded from qemu-ga 10.0.13)', async () => {
    await setup();
    const { status, body } = await get('/domains/web1/network-interfaces');
    expect(status).toBe(200);
    expect(body.domain.name).toBe('web1');
    expect(body.interfaces[1]).toEqual({
      name: 'ens2',
      mac: '52:54:00:a0:00:06',
      addresses: [
        { family: 'ipv4', address: '10.0.2.15', prefix: 24 },
        { family: 'ipv6', address: 'fec0::5054:ff:fea0:6', prefix: 64 },
        { family: 'ipv6', address: 'fe80::5054:ff:fea0:6', prefix: 64 },
      ],
      statistics: { rxBytes: 1290, rxPackets: 3, rxErrors: 0, rxDropped: 0, txBytes: 1554, txPackets: 12, txErrors: 0, txDropped: 0 },
    });
    expect(sent().map((e) => e.execute)).toEqual(['guest-network-get-interfaces']);
  });

  it('keeps interfaces without addresses, MAC or statistics', async () => {
    await setup();
    fake!.agentHandler = answerAll({
      return: [{ name: 'dummy0' }, { name: 'eth1', 'hardware-address': 'AA:BB:CC:DD:EE:FF', 'ip-addresses': [] }],
    });
    const { body } = await get('/domains/web1/network-interfaces');
    expect(body.interfaces).toEqual([
      { name: 'dummy0', mac: null, addresses: [], statistics: null },
      { name: 'eth1', mac: 'aa:bb:cc:dd:ee:ff', addresses: [], statistics: null },
    ]);
  });

  it.each([
    ['the agent refuses', { error: { class: 'GenericError', desc: 'Operation not supported' } }, 502, 'agent_error'],
    ['the reply has the wrong shape', { return: { not: 'an array' } }, 502, 'agent_reply_invalid'],
    [
      'libvirt says the agent is not connected',
      { libvirtError: { code: 86, message: 'Guest agent is not responding: QEMU guest agent is not connected' } },
      503,
      'agent_not_connected',
    ],
  ] as const)('maps the case where %s', async (_what, reply, status, code) => {
    await setup();
    fake!.agentHandler = answerAll(reply);
    const r = await get('/domains/web1/network-interfaces');
    expect(r.status).toBe(status);
    expect(r.body.code).toBe(code);
    expect(r.headers['content-type']).toMatch(/problem\+json/);
    if (code === 'agent_error')
      expect(r.body).toMatchObject({
        agentClass: 'GenericError',
        agentDesc: 'Operation not supported',
        command: 'guest-network-get-interfaces',
      });
  });

  it('answers 409 for a stopped domain and 503 for one without an agent channel', async () => {
    await setup();
    fake!.setState('web2', DomainState.SHUTOFF);
    expect((await get('/domains/web2/network-interfaces')).body.code).toBe('domain_not_running');
    fake!.setAgent('web1', 'none');
    const r = await get('/domains/web1/network-interfaces');
    expect(r.status).toBe(503);
    expect(r.body.code).toBe('agent_not_configured');
  });
});

describe('GET /domains/{domain}/agent/ping', () => {
  it('sends exactly one guest-ping and answers its round trip', async () => {
    await setup();
    const r = await get('/domains/web1/agent/ping');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ domain: { name: 'web1' }, ok: true });
    expect(r.body.roundTripMs).toBeGreaterThan(0);
    expect(sent().map((e) => e.execute)).toEqual(['guest-ping']);
  });
});

describe('deadlines', () => {
  it('answers 504 at the deadline and gives libvirt a slightly longer timeout', async () => {
    await setup();
    fake!.agentHandler = answerAll({ hang: true });
    const r = await get('/domains/web1/network-interfaces?timeoutMs=300');
    expect(r.status).toBe(504);
    expect(r.body.code).toBe('deadline_exceeded');
    expect(r.body.detail).toMatch(/300 ms/);
    // ceil(0.3 s) + 1: libvirt gives up just after the gateway has answered.
    expect(sent()[0]!.timeoutSeconds).toBe(2);
  });

  it('uses the configured default per kind of command', async () => {
    await setup({ agent: { timeoutsMs: { query: 200, quick: 3000 } } });
    fake!.agentHandler = (dom, cmd, t) =>
      cmd.execute === 'guest-network-get-interfaces' ? { hang: true } : defaultAgentHandler(dom, cmd, t);
    expect((await get('/domains/web1/network-interfaces')).status).toBe(504);
    expect((await get('/domains/web2/agent')).status).toBe(200);
  });
});

describe('the per-domain queue', () => {
  it('sends one command at a time per domain, in order, while other domains go on', async () => {
    await setup();
    const gate = gated('guest-network-get-interfaces');
    fake!.agentHandler = gate.handler;
    const first = get('/domains/web1/network-interfaces');
    const second = get('/domains/web1/network-interfaces');
    await waitFor(() => gate.pending() === 1, 2000, 'the first command');
    // The other domain is not held up by web1's queue.
    expect((await get('/domains/web2/agent')).status).toBe(200);
    expect(gate.pending()).toBe(1);
    expect(gw!.gateway.agent.queueDepth({ host: 'local', name: 'web1', uuid: fake!.domain('web1').uuid, id: 1 })).toBe(2);
    gate.releaseAll();
    await waitFor(() => gate.pending() === 1, 2000, 'the second command');
    gate.releaseAll();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(fake!.agentPeakInFlight('web1')).toBe(1);
  });

  it('answers 503 agent_queue_full with Retry-After past the queue depth, without sending', async () => {
    await setup({ agent: { queueDepth: 2, retryAfterSeconds: 7 } });
    const gate = gated('guest-network-get-interfaces');
    fake!.agentHandler = gate.handler;
    const accepted = [1, 2, 3].map(() => get('/domains/web1/network-interfaces'));
    await waitFor(() => gate.pending() === 1, 2000, 'the first command');
    await waitFor(
      () => gw!.gateway.agent.queueDepth({ host: 'local', name: 'web1', uuid: fake!.domain('web1').uuid, id: 1 }) === 3,
      2000,
      'two waiting',
    );
    const refused = await get('/domains/web1/network-interfaces');
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('agent_queue_full');
    expect(refused.headers['retry-after']).toBe('7');
    for (let i = 0; i < 3; i++) {
      await waitFor(() => gate.pending() === 1, 2000, 'the next command');
      gate.releaseAll();
    }
    for (const r of await Promise.all(accepted)) expect(r.status).toBe(200);
    expect(sent()).toHaveLength(3);
  });

  it('never sends a queued command whose client has gone away', async () => {
    await setup();
    const gate = gated('guest-network-get-interfaces');
    fake!.agentHandler = gate.handler;
    await gw!.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = gw!.app.server.address() as AddressInfo;
    const running = fetch(`http://127.0.0.1:${port}/domains/web1/network-interfaces`);
    await waitFor(() => gate.pending() === 1, 2000, 'the first command');
    const req = http.get(`http://127.0.0.1:${port}/domains/web1/network-interfaces`);
    req.on('error', () => {});
    const uuid = fake!.domain('web1').uuid;
    await waitFor(() => gw!.gateway.agent.queueDepth({ host: 'local', name: 'web1', uuid, id: 1 }) === 2, 2000, 'the second to queue');
    req.destroy();
    await waitFor(
      () => gw!.gateway.agent.queueDepth({ host: 'local', name: 'web1', uuid, id: 1 }) === 1,
      2000,
      'the second to leave the queue',
    );
    gate.releaseAll();
    expect((await running).status).toBe(200);
    expect(sent()).toHaveLength(1);
  });
});

describe('closing', () => {
  it('lets an in-flight agent call finish, then closes the libvirt connections', async () => {
    await setup();
    const gate = gated('guest-network-get-interfaces');
    fake!.agentHandler = gate.handler;
    const inFlight = get('/domains/web1/network-interfaces');
    await waitFor(() => gate.pending() === 1, 2000, 'the command');
    const closed = gw!.close();
    setTimeout(() => gate.releaseAll(), 100);
    expect((await inFlight).status).toBe(200);
    await closed;
    gw = null;
    await waitFor(() => fake!.connectionCount === 0, 2000, 'the connections to close');
  });
});

describe('request log', () => {
  it('writes one line per request with id, domain, agent commands and duration, and no more lines', async () => {
    await setup();
    await gw!.app.inject({ method: 'GET', url: '/domains/web1/agent', headers: { 'x-request-id': 'req-42' } });
    const lines = gw!.logs.filter((l) => l.reqId === 'req-42');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'request', domain: 'web1', agentCommands: ['guest-ping', 'guest-info'], statusCode: 200 });
    expect(typeof lines[0]!.durationMs).toBe('number');
  });
});

describe('capability gating', () => {
  const infoWith =
    (commands: { name: string; enabled: boolean }[]): AgentHandler =>
    (dom, cmd, t) =>
      cmd.execute === 'guest-info'
        ? { return: { version: '9.9.9', supported_commands: commands.map((c) => ({ ...c, 'success-response': true })) } }
        : defaultAgentHandler(dom, cmd, t);

  it('answers 501 with the agent version for a command the agent lacks or has disabled, without sending it', async () => {
    await setup();
    fake!.agentHandler = infoWith([{ name: 'guest-ping', enabled: true }]);
    const missing = await get('/domains/web1/network-interfaces');
    expect(missing.status).toBe(501);
    expect(missing.body).toMatchObject({ code: 'command_not_supported', agentVersion: '9.9.9', command: 'guest-network-get-interfaces' });
    expect(missing.body.detail).toMatch(/does not support/);
    fake!.agentHandler = infoWith([{ name: 'guest-network-get-interfaces', enabled: false }]);
    const disabled = await get('/domains/web2/network-interfaces');
    expect(disabled.status).toBe(501);
    expect(disabled.body.detail).toMatch(/disabled/);
    expect(sent()).toHaveLength(0);
  });

  it('asks guest-info once per domain, and again after the agent reconnects', async () => {
    await setup();
    fake!.agentHandler = infoWith([{ name: 'guest-ping', enabled: true }]);
    expect((await get('/domains/web1/network-interfaces')).status).toBe(501);
    expect((await get('/domains/web1/network-interfaces')).status).toBe(501);
    expect(fake!.agentLog.filter((e) => e.execute === 'guest-info')).toHaveLength(1);
    // The agent was upgraded inside the guest: it reconnects, and the gateway asks again.
    fake!.agentHandler = defaultAgentHandler;
    // libvirt's four event subscriptions (lifecycle, reboot, agent, metadata) may come after the first calls: an event emitted
    // before them reaches nobody.
    await waitFor(() => fake!.eventCallbackCount() === 4, 2000, 'the event subscriptions');
    fake!.emitAgentLifecycle('web1', AgentLifecycleState.CONNECTED, 2);
    await waitFor(async () => (await get('/domains/web1/network-interfaces')).status === 200, 2000, 'the new capabilities');
    expect(fake!.agentLog.filter((e) => e.execute === 'guest-info')).toHaveLength(2);
  });

  it('GET /domains/{domain}/agent asks guest-info afresh, and later commands are gated on its answer', async () => {
    await setup();
    fake!.agentHandler = infoWith([{ name: 'guest-ping', enabled: true }]);
    expect((await get('/domains/web1/network-interfaces')).status).toBe(501);
    // The agent offers the command now, but nothing has told the gateway: what it cached still says no...
    fake!.agentHandler = infoWith([
      { name: 'guest-ping', enabled: true },
      { name: 'guest-network-get-interfaces', enabled: true },
    ]);
    expect((await get('/domains/web1/network-interfaces')).status).toBe(501);
    // ...until GET /agent asks again.
    const agent = await get('/domains/web1/agent');
    expect(agent.body.commands.map((c: { name: string }) => c.name)).toEqual(['guest-network-get-interfaces', 'guest-ping']);
    expect((await get('/domains/web1/network-interfaces')).status).toBe(200);
    expect(fake!.agentLog.filter((e) => e.execute === 'guest-info')).toHaveLength(2);
  });
});

describe('command size', () => {
  it('never sends a command larger than the agent parses reliably, whatever route builds it', async () => {
    await setup();
    const { command } = await import('../../src/agent/commands/define.js');
    const { z } = await import('zod');
    const big = command('guest-file-write', 'query', z.object({ handle: z.number(), 'buf-b64': z.string() }), z.unknown());
    const dom = await gw!.gateway.domains.resolve('web1');
    const err = await gw!.gateway.agent.execute(dom, big, { handle: 1, 'buf-b64': 'A'.repeat(300 * 1024) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'payload_too_large' });
    expect(sent().filter((e) => e.execute === 'guest-file-write')).toHaveLength(0);
  });
});
