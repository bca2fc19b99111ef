// GET /addresses against the real guests: every running guest's IP from guests.json, the guest without an
// agent marked with its error, the stopped one skipped unless named, and the cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, guests } from './support/guests.js';

let gw: GatewayProcess;

async function addresses(query = ''): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}/addresses${query}`);
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe('GET /addresses', () => {
  it("lists every running guest's IP, marks the one without an agent, skips the stopped one", async () => {
    const { status, body } = await addresses('?timeoutMs=20000');
    expect(status).toBe(200);
    for (const g of guests) {
      const entry = body.domains.find((d: { name: string }) => d.name === g.name);
      if (!g.running) {
        expect(entry, g.name).toBeUndefined();
        continue;
      }
      expect(entry.uuid).toBe(g.uuid);
      if (!g.agent) {
        expect(entry).toMatchObject({ ok: false, error: { code: 'agent_not_configured', status: 503 } });
        continue;
      }
      expect(entry.ok, `${g.name}: ${JSON.stringify(entry.error)}`).toBe(true);
      const [ip, prefix] = g.ip.split('/');
      const nic = entry.interfaces.find((i: { mac: string }) => i.mac === g.mac);
      expect(nic.addresses).toContainEqual({ family: 'ipv4', address: ip, prefix: Number(prefix) });
      expect(entry.interfaces.find((i: { name: string }) => i.name === 'lo')).toBeUndefined();
    }
  });

  it('serves the second call from cache', async () => {
    await addresses('?domain=guest1');
    const { body } = await addresses('?domain=guest1');
    expect(body.domains).toHaveLength(1);
    expect(body.domains[0]).toMatchObject({ name: 'guest1', ok: true, cached: true });
  });

  it('filters by name and UUID, and lists named stopped and unknown domains with their error', async () => {
    const g2 = guests.find((g) => g.name === 'guest2')!;
    const { body } = await addresses(`?domain=guest1,${g2.uuid}&domain=guest-stopped&domain=no-such-guest`);
    expect(body.domains.map((d: { name: string }) => d.name)).toEqual(['guest-stopped', 'guest1', 'guest2', 'no-such-guest']);
    expect(body.domains[0]).toMatchObject({ ok: false, error: { code: 'domain_not_running' } });
    expect(body.domains[3]).toMatchObject({ uuid: null, ok: false, error: { code: 'domain_not_found' } });
  });
});
