// The gateway against the real libvirtd and the real guests' qemu-ga: what it says must match the guests.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, guest, guests } from './support/guests.js';

let gw: GatewayProcess;
const agentGuests = guests.filter((g) => g.agent && g.running);
const noAgent = guest((g) => !g.agent && g.running, 'running guest without an agent');
const stopped = guest((g) => !g.running, 'stopped guest');

async function get(path: string): Promise<{ status: number; body: any; type: string | null }> {
  const res = await fetch(`${gw.url}${path}`);
  return { status: res.status, body: await res.json(), type: res.headers.get('content-type') };
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe('domains', () => {
  it('lists every test guest with its uuid, state and agent state', async () => {
    const { status, body } = await get('/domains');
    expect(status).toBe(200);
    for (const g of guests) {
      const d = body.domains.find((x: { name: string }) => x.name === g.name);
      expect(d, g.name).toBeDefined();
      expect(d.uuid).toBe(g.uuid);
      expect(d.state).toBe(g.running ? 'running' : 'shutoff');
      expect(d.agentChannel).toBe(g.agent);
      if (g.running) expect(d.id).toBeGreaterThan(0);
      else expect(d.id).toBeNull();
      expect(d.agentState).toBe(g.agent && g.running ? 'connected' : 'disconnected');
    }
  });

  it('finds a domain by name, by UUID and by UUID in upper case', async () => {
    const g = agentGuests[0]!;
    const byName = await get(`/domains/${g.name}`);
    const byUuid = await get(`/domains/${g.uuid}`);
    const byUpper = await get(`/domains/${g.uuid.toUpperCase()}`);
    expect(byName.status).toBe(200);
    expect(byName.body.uuid).toBe(g.uuid);
    expect(byUuid.body).toEqual(byName.body);
    expect(byUpper.body).toEqual(byName.body);
  });

  it('answers 404 problem+json for an unknown domain, by name and by UUID', async () => {
    for (const id of ['no-such-domain', '00000000-0000-4000-8000-000000000000']) {
      const r = await get(`/domains/${id}`);
      expect(r.status).toBe(404);
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.body.code).toBe('domain_not_found');
      const nic = await get(`/domains/${id}/network-interfaces`);
      expect(nic.status).toBe(404);
    }
  });
});

describe('network interfaces', () => {
  it.each(agentGuests.map((g) => [g.name, g]))("report %s's real MAC and IP", async (_name, g) => {
    const { status, body } = await get(`/domains/${g.name}/network-interfaces`);
    expect(status).toBe(200);
    expect(body.domain).toEqual({ host: 'local', name: g.name, uuid: g.uuid });
    const eth = body.interfaces.find((i: { mac: string }) => i.mac === g.mac);
    expect(eth, `an interface with MAC ${g.mac}`).toBeDefined();
    const [ip, prefix] = g.ip.split('/');
    expect(eth.addresses).toContainEqual({ family: 'ipv4', address: ip, prefix: Number(prefix) });
    expect(eth.statistics).toMatchObject({ rxBytes: expect.any(Number), txPackets: expect.any(Number) });
    const lo = body.interfaces.find((i: { name: string }) => i.name === 'lo');
    expect(lo.addresses).toContainEqual({ family: 'ipv4', address: '127.0.0.1', prefix: 8 });
  });

  it('answers 409 for a defined but stopped domain', async () => {
    const r = await get(`/domains/${stopped.name}/network-interfaces`);
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('domain_not_running');
  });

  it('answers 503 for a running domain without an agent channel', async () => {
    const r = await get(`/domains/${noAgent.name}/network-interfaces`);
    expect(r.status).toBe(503);
    expect(r.body.code).toBe('agent_not_configured');
  });
});

describe('agent', () => {
  it("reports the agent's version and commands, as qemu-ga itself does", async () => {
    const g = agentGuests[0]!;
    const { status, body } = await get(`/domains/${g.uuid}/agent`);
    expect(status).toBe(200);
    // The guest runs the host's own qemu-ga binary (scripts/guest): the versions must agree.
    const hostVersion = /(\d+\.\d+\.\d+)/.exec(execFileSync('qemu-ga', ['--version'], { encoding: 'utf8' }))![1];
    expect(body.version).toContain(hostVersion);
    expect(body.ping.ok).toBe(true);
    expect(body.ping.roundTripMs).toBeGreaterThan(0);
    const names = body.commands.map((c: { name: string }) => c.name);
    expect(names).toContain('guest-network-get-interfaces');
    expect(body.commands.find((c: { name: string }) => c.name === 'guest-shutdown').successResponse).toBe(false);
  });

  it('pings the agent of every guest that has one, and says why for the others', async () => {
    for (const g of agentGuests) {
      const r = await get(`/domains/${g.name}/agent/ping`);
      expect(r.status, g.name).toBe(200);
      expect(r.body).toMatchObject({ domain: { name: g.name, uuid: g.uuid }, ok: true });
    }
    expect((await get(`/domains/${noAgent.name}/agent/ping`)).body.code).toBe('agent_not_configured');
    expect((await get(`/domains/${stopped.name}/agent/ping`)).body.code).toBe('domain_not_running');
  });

  it('rejects a bad deadline with 400 before talking to the agent', async () => {
    for (const q of ['timeoutMs=0', 'timeoutMs=abc', 'timeoutMs=99999999']) {
      const r = await get(`/domains/${agentGuests[0]!.name}/agent?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.code).toBe('invalid_request');
    }
  });
});

describe('health', () => {
  it('is alive and ready', async () => {
    expect((await get('/healthz')).status).toBe(200);
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.libvirt.connectionsUp).toBeGreaterThan(0);
  });

  it('serves the OpenAPI document and Swagger UI', async () => {
    const doc = await get('/openapi.json');
    expect(doc.body.paths['/domains/{domain}/network-interfaces']).toBeDefined();
    const ui = await fetch(`${gw.url}/docs/`);
    expect(ui.status).toBe(200);
  });
});

describe('request log', () => {
  it('writes one line per request with request id, domain, agent command and duration', async () => {
    const g = agentGuests[0]!;
    const res = await fetch(`${gw.url}/domains/${g.name}/network-interfaces`, { headers: { 'x-request-id': 'e2e-log-check' } });
    expect(res.headers.get('x-request-id')).toBe('e2e-log-check');
    await new Promise((r) => setTimeout(r, 200));
    const lines = gw.logs.filter((l) => l.includes('e2e-log-check')).map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      reqId: 'e2e-log-check',
      domain: g.name,
      agentCommands: ['guest-network-get-interfaces'],
      statusCode: 200,
    });
    expect(lines[0].durationMs).toBeGreaterThan(0);
  });
});
