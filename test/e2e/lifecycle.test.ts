// libvirt's lifecycle and agent-lifecycle events reach the gateway: a guest started behind its back shows
// its agent connecting, and its stop shows at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, guest, virsh, waitFor } from './support/guests.js';

const stopped = guest((g) => !g.running && g.agent, 'stopped guest with an agent');
let gw: GatewayProcess;

async function domain(): Promise<{ state: string; agentState: string; id: number | null }> {
  return (await (await fetch(`${gw.url}/domains/${stopped.name}`)).json()) as { state: string; agentState: string; id: number | null };
}

function ensureStopped(): void {
  if (virsh('domstate', stopped.name).trim() !== 'shut off') virsh('destroy', stopped.name);
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
});
afterAll(async () => {
  ensureStopped();
  await gw?.stop();
});

describe('domain and agent lifecycle events', () => {
  it('follow a guest started and destroyed outside the gateway', async () => {
    expect(await domain()).toMatchObject({ state: 'shutoff', agentState: 'disconnected', id: null });
    virsh('start', stopped.name);
    try {
      // Seen running before its agent is up, the domain's agent state is read once; after that only the
      // agent-lifecycle event can turn it to connected.
      await waitFor('the domain to show as running', async () => (await domain()).state === 'running', 30_000, 100);
      await waitFor(
        'the agent-lifecycle event to mark the agent connected',
        async () => (await domain()).agentState === 'connected',
        90_000,
        500,
      );
      const running = await domain();
      expect(running.id).toBeGreaterThan(0);
      const nics = await fetch(`${gw.url}/domains/${stopped.name}/network-interfaces`);
      expect(nics.status).toBe(200);
    } finally {
      virsh('destroy', stopped.name);
    }
    await waitFor('the stop to show', async () => (await domain()).state === 'shutoff', 10_000, 100);
    expect(await domain()).toMatchObject({ agentState: 'disconnected', id: null });
    const nics = await fetch(`${gw.url}/domains/${stopped.name}/network-interfaces`);
    expect(nics.status).toBe(409);
  });
});
