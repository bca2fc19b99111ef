// The agent-socket backend through the whole gateway (HTTP, directory, queue, transport, channel) against fake
// agents on unix sockets, beside a fake libvirtd: listing and naming, errors, power without replies, the
// diagnosis route, busy sockets, and a gateway without libvirt at all.
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nameFromFile, uuidForSocket } from '../../src/agent-socket/host.js';
import { defaultFakeHandler, FakeAgentSocket, type FakeHandler } from '../support/fake-agent-socket.js';
import { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';

const COMMANDS = [
  'guest-ping',
  'guest-info',
  'guest-sync',
  'guest-sync-delimited',
  'guest-get-host-name',
  'guest-network-get-interfaces',
  'guest-file-open',
  'guest-shutdown',
  'guest-suspend-ram',
];

/** The default fake plus a guest-info listing more, interfaces, a refusing guest-file-open and a silent suspend. */
const handler: FakeHandler = (cmd, agent) => {
  switch (cmd.execute) {
    case 'guest-info':
      return JSON.stringify({
        return: {
          version: '8.0.0-fake',
          supported_commands: COMMANDS.map((name) => ({ name, enabled: true, 'success-response': !/shutdown|suspend/.test(name) })),
        },
      });
    case 'guest-network-get-interfaces':
      return JSON.stringify({
        return: [
          {
            name: 'eth0',
            'hardware-address': '52:54:00:00:00:99',
            'ip-addresses': [{ 'ip-address-type': 'ipv4', 'ip-address': '10.9.8.7', prefix: 24 }],
          },
        ],
      });
    case 'guest-file-open':
      return JSON.stringify({
        error: { class: 'GenericError', desc: "failed to open file '/nope' (mode: 'r'): No such file or directory" },
      });
    case 'guest-suspend-ram':
      return null;
    default:
      return defaultFakeHandler(cmd, agent);
  }
};

let libvirtd: FakeLibvirtd | null = null;
let agents: FakeAgentSocket[] = [];
let gw: TestGateway | null = null;
let dir: string | null = null;

afterEach(async () => {
  await gw?.close();
  await libvirtd?.stop();
  for (const a of agents) await a.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
  gw = libvirtd = dir = null;
  agents = [];
});

async function agent(): Promise<FakeAgentSocket> {
  const a = await FakeAgentSocket.start();
  a.handler = handler;
  agents.push(a);
  return a;
}

async function get(url: string, method = 'GET', payload?: object) {
  const res = await gw!.app.inject({ method: method as 'GET', url, ...(payload ? { payload } : {}) });
  return { status: res.statusCode, body: res.json() };
}

/** qga_gateway_agent_command_duration_seconds_count for one command and outcome, from GET /metrics (0 when absent). */
async function commandCount(command: string, outcome: string): Promise<number> {
  const text = (await gw!.app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('qga_gateway_agent_command_duration_seconds_count{') &&
        l.includes(`command="${command}"`) &&
        l.includes(`outcome="${outcome}"`),
    );
  return line ? Number(line.split(' ').pop()) : 0;
}

/** A gateway with a fake libvirtd (domain web1) and agents: vm100 from a directory of *.qga, web2 listed by path. */
async function setup(extra: Record<string, unknown> = {}) {
  const [a100, web2] = [await agent(), await agent()];
  dir = mkdtempSync(join(tmpdir(), 'qgw-sockets-'));
  symlinkSync(a100.path, join(dir, '100.qga'));
  libvirtd = await FakeLibvirtd.start();
  libvirtd.addDomain({ name: 'web1' });
  gw = await startTestGateway(libvirtd.uri, {
    agentSockets: {
      host: 'pve',
      directories: [{ glob: `${dir}/*.qga`, name: 'vm{stem}' }],
      sockets: [{ name: 'web2', path: web2.path }],
      syncTimeoutMs: 500,
      ...extra,
    },
  });
  return { a100, web2 };
}

describe('agent-socket domains beside libvirt', () => {
  it('are listed with their host, backend and a stable UUID made from the socket path', async () => {
    const { web2 } = await setup();
    const { body } = await get('/domains');
    expect(body.domains.map((d: { host: string; name: string; backend: string }) => `${d.host}:${d.name}:${d.backend}`)).toEqual([
      'pve:vm100:agent-socket',
      'local:web1:libvirt',
      'pve:web2:agent-socket',
    ]);
    const web2Body = body.domains.find((d: { name: string }) => d.name === 'web2');
    expect(web2Body).toMatchObject({ uuid: uuidForSocket(web2.path), state: 'running', id: null, agentChannel: true });
    expect(uuidForSocket(web2.path)).toBe(uuidForSocket(web2.path));
    expect((await get(`/domains/${web2Body.uuid}`)).body).toMatchObject({ host: 'pve', name: 'web2' });
    const hosts = (await get('/hosts')).body.hosts;
    expect(hosts.map((h: { name: string; backend: string }) => `${h.name}:${h.backend}`)).toEqual(['local:libvirt', 'pve:agent-socket']);
    expect(hosts[1]).toMatchObject({ transport: 'agent-socket', state: 'up', connections: 2 });
  });

  it('answers typed resources over the socket: interfaces, agent info, with one resync before the first command', async () => {
    const { a100 } = await setup();
    const nics = await get('/domains/vm100/network-interfaces');
    expect(nics.status).toBe(200);
    expect(nics.body.domain).toMatchObject({ host: 'pve', name: 'vm100' });
    expect(nics.body.interfaces[0]).toMatchObject({
      mac: '52:54:00:00:00:99',
      addresses: [{ family: 'ipv4', address: '10.9.8.7', prefix: 24 }],
    });
    expect(a100.inputLog.slice(0, 3)).toEqual(['FF', 'guest-sync-delimited', 'guest-info']);
    expect((await get('/domains/pve:vm100/agent')).body.version).toBe('8.0.0-fake');
    // Not offered by this agent: 501 without being sent.
    const load = await get('/domains/vm100/load');
    expect(load.status).toBe(501);
    expect(a100.inputLog).not.toContain('guest-get-load');
  });

  it("maps the agent's error replies as for libvirt: a missing guest file is 404 with the agent's words", async () => {
    await setup();
    const r = await get('/domains/vm100/files/nope');
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ code: 'file_not_found' });
    expect(r.body.detail).toMatch(/No such file/);
    // The agent service reads the reply inside the call, so the metrics count it as the agent's error.
    expect(await commandCount('guest-file-open', 'agent_error')).toBe(1);
  });

  it('a reply with neither "return" nor "error" is 502 agent_reply_invalid, counted as an error', async () => {
    const { a100 } = await setup();
    a100.handler = (cmd, a) => (cmd.execute === 'guest-get-host-name' ? JSON.stringify({ oops: 1 }) : handler(cmd, a));
    const r = await get('/domains/vm100/hostname');
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({ code: 'agent_reply_invalid' });
    expect(await commandCount('guest-get-host-name', 'error')).toBe(1);
    expect(await commandCount('guest-get-host-name', 'ok')).toBe(0);
  });

  it('sends shutdown and suspend without waiting for a reply, and resynchronises before the next command', async () => {
    const { a100 } = await setup();
    const r = await get('/domains/vm100/power', 'POST', { action: 'suspend-ram' });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ command: 'guest-suspend-ram', expect: { state: 'running', lifecycleEvents: [] } });
    const shutdown = await get('/domains/vm100/power', 'POST', { action: 'shutdown' });
    expect(shutdown.status).toBe(202);
    expect(shutdown.body.expect).toMatchObject({ state: 'shutoff', lifecycleEvents: [] });
    expect((await get('/domains/vm100/agent/ping')).status).toBe(200);
    const log = a100.inputLog;
    const at = log.lastIndexOf('guest-shutdown');
    expect(log.slice(at, at + 4)).toEqual(['guest-shutdown', 'FF', 'guest-sync-delimited', 'guest-ping']);
  });

  it('POST /agent/sync reports an in-step channel, and a garbled one as found', async () => {
    const { web2 } = await setup();
    const first = await get('/domains/web2/agent/sync', 'POST', {});
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      backend: 'agent-socket',
      command: 'guest-sync-delimited',
      inStep: true,
      discardedBytes: 0,
      staleReplies: 0,
    });
    web2.sendRaw(Buffer.from('{"return": 12345}\n'));
    await new Promise((r) => setTimeout(r, 50));
    const stale = await get('/domains/web2/agent/sync', 'POST', { command: 'guest-sync' });
    expect(stale.body).toMatchObject({ command: 'guest-sync', inStep: false, staleReplies: 1 });
    // Through libvirt only guest-sync goes: the 0xFF of guest-sync-delimited would break libvirt's channel.
    expect((await get('/domains/web1/agent/sync', 'POST', { command: 'guest-sync-delimited' })).status).toBe(400);
  });

  it('a socket another client holds is 503 agent_busy within the sync timeout, not a hang', async () => {
    const { web2 } = await setup();
    const net = await import('node:net');
    const holder = net.connect(web2.path);
    await new Promise((r) => holder.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    const r = await get('/domains/web2/agent/ping');
    expect(r.status).toBe(503);
    expect(r.body.code).toBe('agent_busy');
    expect(performance.now() - t0).toBeLessThan(3000);
    holder.destroy();
    await new Promise((r) => setTimeout(r, 100));
    let ok = 0;
    for (let i = 0; i < 20 && ok === 0; i++) {
      if ((await get('/domains/web2/agent/ping')).status === 200) ok++;
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(ok).toBe(1);
  });

  it('a domain whose socket is gone is shut off: 409 domain_not_running', async () => {
    const { a100 } = await setup({ rescanMs: 0 });
    expect((await get('/domains/vm100/agent/ping')).status).toBe(200);
    await a100.stop();
    const d = await get('/domains/vm100');
    expect(d.body).toMatchObject({ state: 'shutoff', agentState: 'disconnected' });
    const r = await get('/domains/vm100/agent/ping');
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('domain_not_running');
  });
});

describe('a gateway without libvirt', () => {
  it('serves agent sockets only, and is ready with no libvirt daemon to wait for', async () => {
    const a = await agent();
    gw = await startTestGateway('qemu:///system', {
      libvirt: { enabled: false },
      agentSockets: { sockets: [{ name: 'solo', path: a.path }] },
    });
    expect((await get('/readyz')).status).toBe(200);
    expect((await get('/hosts')).body.hosts.map((h: { name: string }) => h.name)).toEqual(['direct']);
    expect((await get('/domains')).body.domains.map((d: { name: string }) => d.name)).toEqual(['solo']);
    // One host only: ids need no qualifying, and answers use the plain UUID.
    expect((await get('/domains/solo/agent/ping')).status).toBe(200);
    expect((await get('/addresses')).body.domains).toHaveLength(1);
  });

  it('derives names from file names with {stem} and {file}', () => {
    expect(nameFromFile('{stem}', '100.qga')).toBe('100');
    expect(nameFromFile('vm-{stem}', '100.qga')).toBe('vm-100');
    expect(nameFromFile('{file}', 'web.sock')).toBe('web.sock');
    expect(nameFromFile('{stem}', 'noext')).toBe('noext');
  });
});
