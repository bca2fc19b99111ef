// Power actions for real, on guest-power only (the one guest nobody else uses): suspend to RAM and back,
// suspend to disk (the guest has no swap: it resumes), hybrid (refused by the guest: 501), reboot, halt and
// shutdown. guest-power is left running with its agent answering, whatever happens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, virsh, waitFor } from './support/guests.js';
import { bootId, domState, ensurePowerGuestRunning, powerGuest } from './support/power.js';

let gw: GatewayProcess;
const name = powerGuest.name;

async function power(action: string): Promise<{ status: number; body: any; location: string | null }> {
  const res = await fetch(`${gw.url}/domains/${name}/power`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ action }),
  });
  return { status: res.status, body: await res.json(), location: res.headers.get('location') };
}

async function domain(): Promise<{ state: string; agentState: string }> {
  return (await (await fetch(`${gw.url}/domains/${name}`)).json()) as { state: string; agentState: string };
}

async function agentPingOk(): Promise<boolean> {
  return (await fetch(`${gw.url}/domains/${name}/agent/ping?timeoutMs=3000`)).status === 200;
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
  await ensurePowerGuestRunning();
});
afterAll(async () => {
  await ensurePowerGuestRunning();
  await gw?.stop();
});

describe('power on guest-power', () => {
  it('suspend-hybrid: the guest has no such mode, 501 suspend_not_supported', async () => {
    const r = await power('suspend-hybrid');
    expect(r.status).toBe(501);
    expect(r.body).toMatchObject({
      code: 'suspend_not_supported',
      command: 'guest-suspend-hybrid',
      agentDesc: 'the requested suspend mode is not supported by the guest',
    });
    expect(domState()).toBe('running');
  });

  it('suspend-ram: 202, the domain becomes pmsuspended, and wakes', async () => {
    const r = await power('suspend-ram');
    expect(r.status).toBe(202);
    expect(r.location).toBe(`/domains/${powerGuest.uuid}`);
    expect(r.body).toMatchObject({ action: 'suspend-ram', command: 'guest-suspend-ram', accepted: true, expect: { state: 'pmsuspended' } });
    await waitFor('state pmsuspended', async () => (await domain()).state === 'pmsuspended', 60_000);
    virsh('dompmwakeup', name);
    await waitFor('the agent to answer after the wake-up', agentPingOk, 60_000);
    expect((await domain()).state).toBe('running');
  });

  it('suspend-disk: sent; without swap the guest cannot hibernate and resumes, its agent back', async () => {
    const before = bootId();
    const r = await power('suspend-disk');
    // The guest has no swap: its hibernation fails. Whether libvirt hears the agent's error reply before the
    // channel drops is a race in the guest (seen both ways), so both answers are right: 202 (sent), or the
    // agent's own failure passed on as 502 agent_error with its message.
    if (r.status === 202) {
      expect(r.body.command).toBe('guest-suspend-disk');
    } else {
      expect(r.status).toBe(502);
      expect(r.body).toMatchObject({ code: 'agent_error', command: 'guest-suspend-disk' });
      expect(r.body.agentDesc).toMatch(/suspend/);
    }
    await waitFor('the agent to answer after the failed hibernation', agentPingOk, 90_000);
    expect(domState()).toBe('running');
    expect(bootId()).toBe(before);
  });

  it('reboot: 202, the guest boots again (new boot id) and its agent comes back', async () => {
    const before = bootId();
    const r = await power('reboot');
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ command: 'guest-shutdown', expect: { state: 'running' } });
    await waitFor('a new boot id', async () => (await agentPingOk()) && bootId() !== before, 120_000, 1000);
    expect((await domain()).state).toBe('running');
  });

  it('halt: 202 without waiting for a reply; this guest powers off', async () => {
    const r = await power('halt');
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ action: 'halt', command: 'guest-shutdown' });
    await waitFor('state shutoff', async () => (await domain()).state === 'shutoff', 90_000);
    expect((await domain()).agentState).toBe('disconnected');
    await ensurePowerGuestRunning();
  });

  it('shutdown: 202, state shutoff; started again it answers', async () => {
    const r = await power('shutdown');
    expect(r.status).toBe(202);
    expect(r.body.expect).toEqual({ state: 'shutoff', lifecycleEvents: ['shutdown', 'stopped'], agentState: 'disconnected' });
    await waitFor('state shutoff', async () => (await domain()).state === 'shutoff', 90_000);
    const off = await power('shutdown');
    expect(off.status).toBe(409);
    expect(off.body.code).toBe('domain_not_running');
    await ensurePowerGuestRunning();
    await waitFor('the gateway to see the agent again', agentPingOk, 60_000);
  });

  it('answers 503 for a guest without an agent and 400 for an unknown action, touching nothing', async () => {
    const noAgent = await fetch(`${gw.url}/domains/guest-noagent/power`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'shutdown' }),
    });
    expect(noAgent.status).toBe(503);
    expect(((await noAgent.json()) as { code: string }).code).toBe('agent_not_configured');
    expect((await power('explode')).status).toBe(400);
    expect(virsh('domstate', 'guest-noagent').trim()).toBe('running');
  });
});
