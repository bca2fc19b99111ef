// File-system freeze and fstrim for real on guest-power. Its root is an initramfs (rootfs), which cannot be
// frozen or trimmed: qemu-ga answers a freeze with 0 file systems and stays 'thawed', and fstrim with no
// paths. What is tested here is what that guest can show: the answers, the deadline thaw the gateway runs
// with no client call, the thaw at graceful shutdown, and the errors. The frozen path is in the unit tests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentCommand, assertProvisioned, waitFor } from './support/guests.js';
import { ensurePowerGuestRunning, powerGuest } from './support/power.js';

let gw: GatewayProcess;
const name = powerGuest.name;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

const logged = (g: GatewayProcess, msg: string) => g.logs.some((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"domain":"${name}"`));

beforeAll(async () => {
  assertProvisioned();
  await ensurePowerGuestRunning();
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
  // Whatever happened, leave the guest thawed.
  agentCommand(name, { execute: 'guest-fsfreeze-thaw' });
});

describe('fsfreeze on guest-power', () => {
  it('reports thawed, held by nobody', async () => {
    const r = await call('GET', `/domains/${name}/fsfreeze`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ domain: { name, uuid: powerGuest.uuid }, status: 'thawed', heldByGateway: null });
  });

  it('freeze: an initramfs root gives 0 file systems and stays thawed; the deadline thaw runs with no client call', async () => {
    const r = await call('POST', `/domains/${name}/fsfreeze`, { thawAfterMs: 2000 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ frozenFileSystems: 0, status: 'thawed', heldByGateway: { mountpoints: null, blocking: false } });
    // Nothing frozen, so other commands still pass.
    expect((await call('GET', `/domains/${name}/network-interfaces`)).status).toBe(200);
    const during = await call('GET', `/domains/${name}/fsfreeze`);
    expect(during.body.heldByGateway.autoThawAt).toBe(r.body.heldByGateway.autoThawAt);
    // The gateway thaws by itself (guest-fsfreeze-thaw) when the deadline passes.
    await waitFor('the deadline thaw', async () => logged(gw, 'freeze deadline passed: thawed'), 30_000, 200);
    expect((await call('GET', `/domains/${name}/fsfreeze`)).body).toMatchObject({ status: 'thawed', heldByGateway: null });
  });

  it('freeze-list: a listed mount point that cannot be frozen counts 0; a second freeze while held is 409; DELETE thaws', async () => {
    const r = await call('POST', `/domains/${name}/fsfreeze`, { mountpoints: ['/'], thawAfterMs: 60_000 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ frozenFileSystems: 0, heldByGateway: { mountpoints: ['/'] } });
    const again = await call('POST', `/domains/${name}/fsfreeze`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('state_conflict');
    const thawed = await call('DELETE', `/domains/${name}/fsfreeze`);
    expect(thawed.status).toBe(200);
    expect(thawed.body).toEqual({ domain: { name, uuid: powerGuest.uuid }, thawedFileSystems: 0, status: 'thawed' });
    expect((await call('GET', `/domains/${name}/fsfreeze`)).body.heldByGateway).toBeNull();
  });

  it('refuses a freeze longer than the configured maximum, and bad mount points', async () => {
    expect((await call('POST', `/domains/${name}/fsfreeze`, { thawAfterMs: 300_001 })).status).toBe(400);
    expect((await call('POST', `/domains/${name}/fsfreeze`, { mountpoints: ['relative'] })).status).toBe(400);
    expect((await call('GET', `/domains/${name}/fsfreeze`)).body.heldByGateway).toBeNull();
  });

  it('a graceful shutdown thaws what the gateway froze', async () => {
    const other = await startGateway();
    try {
      const res = await fetch(`${other.url}/domains/${name}/fsfreeze`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ thawAfterMs: 300_000 }) });
      expect(res.status).toBe(200);
    } finally {
      expect(await other.stop('SIGTERM')).toBe(0);
    }
    expect(logged(other, 'shutting down: thawed')).toBe(true);
  });

  it('answers 503 for a guest without an agent, 409 for a stopped one', async () => {
    expect((await call('POST', '/domains/guest-noagent/fsfreeze')).body.code).toBe('agent_not_configured');
    expect((await call('GET', '/domains/guest-stopped/fsfreeze')).body.code).toBe('domain_not_running');
  });
});

describe('fstrim on guest-power', () => {
  it('answers the paths qemu-ga trimmed: none on an initramfs', async () => {
    const r = await call('POST', `/domains/${name}/fstrim`, { minimumBytes: 0 });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ domain: { name, uuid: powerGuest.uuid }, paths: [] });
  });
});
