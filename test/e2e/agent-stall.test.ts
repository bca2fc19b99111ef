// A guest whose qemu-ga stops answering (SIGSTOP inside the guest): the gateway answers 504 on time, the
// other guest is not affected, and the domain answers again afterwards without restarting the gateway.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentCommand, assertProvisioned, guests, stopAgentFor, waitFor } from './support/guests.js';

const [healthy, stalled] = guests.filter((g) => g.agent && g.running);
if (!healthy || !stalled) throw new Error('guests.json needs two running guests with an agent');

const QUERY_DEADLINE_MS = 3000;
let gw: GatewayProcess;

async function nics(url: string, domain: string, query = ''): Promise<{ status: number; body: any; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/domains/${domain}/network-interfaces${query}`);
  return { status: res.status, body: await res.json(), ms: performance.now() - t0 };
}

async function agentAnswers(domain: string): Promise<boolean> {
  try {
    agentCommand(domain, { execute: 'guest-ping' }, 2);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  assertProvisioned();
  await waitFor(`${stalled.name}'s agent to answer`, () => agentAnswers(stalled.name));
  gw = await startGateway({ agent: { timeoutsMs: { query: QUERY_DEADLINE_MS } } });
});
afterAll(async () => {
  await gw?.stop();
  // Never leave a stopped agent behind for the next test file.
  await waitFor(`${stalled.name}'s agent to answer again`, () => agentAnswers(stalled.name), 60_000);
});

describe('a stalled guest agent', () => {
  it('gets 504 deadline_exceeded, leaves the other guest alone, and answers again afterwards', async () => {
    expect((await nics(gw.url, stalled.name)).status).toBe(200);
    stopAgentFor(stalled.name, 12);
    await waitFor(`${stalled.name}'s agent to stop`, async () => !(await agentAnswers(stalled.name)), 10_000, 200);

    // Two callers to the stalled domain: the first waits on the agent, the second in the gateway's queue.
    const [first, second, other] = await Promise.all([nics(gw.url, stalled.name), nics(gw.url, stalled.name), nics(gw.url, healthy.name)]);
    for (const r of [first, second]) {
      expect(r.status).toBe(504);
      expect(r.body.code).toBe('deadline_exceeded');
      expect(r.body.domain).toBe(stalled.name);
    }
    expect(second.body.detail).toMatch(/queue/);
    expect(other.status).toBe(200);

    // The same gateway process recovers by itself once the agent runs again.
    await waitFor(
      `${stalled.name} to answer through the gateway`,
      async () => (await nics(gw.url, stalled.name)).status === 200,
      60_000,
      1000,
    );
    const after = await nics(gw.url, stalled.name);
    expect(after.status).toBe(200);
    expect(after.body.interfaces.some((i: { mac: string }) => i.mac === stalled.mac)).toBe(true);
  });

  it('lets an in-flight call finish on SIGTERM, then exits 0', async () => {
    const own = await startGateway();
    try {
      await waitFor(`${stalled.name}'s agent to answer`, () => agentAnswers(stalled.name));
      stopAgentFor(stalled.name, 6);
      await waitFor(`${stalled.name}'s agent to stop`, async () => !(await agentAnswers(stalled.name)), 10_000, 200);
      const inFlight = nics(own.url, stalled.name, '?timeoutMs=2500');
      await new Promise((r) => setTimeout(r, 500));
      const exited = own.stop('SIGTERM');
      const answer = await inFlight;
      // The caller got its answer (the deadline), not a dropped connection.
      expect(answer.status).toBe(504);
      expect(await exited).toBe(0);
      expect(own.logs.some((l) => l.includes('shutting down'))).toBe(true);
      await expect(fetch(`${own.url}/healthz`)).rejects.toThrow();
    } finally {
      await own.stop('SIGKILL');
    }
  });
});
