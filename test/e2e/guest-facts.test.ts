// Guest facts and settings against the real libvirtd and the real guests' qemu-ga 7.2. Reads compare with
// what virsh asks the agent directly; writes go to guest2, are harmless (a vCPU or memory block set to the
// state it is in) or restored at once (the clock is set back to the host's).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentCommand, assertProvisioned, guest } from './support/guests.js';

let gw: GatewayProcess;
const reader = guest((g) => g.name === 'guest1', 'guest1');
const writer = guest((g) => g.name === 'guest2', 'guest2');
const noAgent = guest((g) => !g.agent && g.running, 'running guest without an agent');
const stopped = guest((g) => !g.running, 'stopped guest');

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; type: string | null }> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: res.status, body: await res.json(), type: res.headers.get('content-type') };
}
const get = (path: string) => call('GET', path);

const hostNs = () => BigInt(Date.now()) * 1_000_000n;
const SECOND = 1_000_000_000n;
const abs = (x: bigint) => (x < 0n ? -x : x);

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe('guest facts (guest1, read only)', () => {
  it('GET /os matches the guest image and what the agent says', async () => {
    const r = await get(`/domains/${reader.name}/os`);
    expect(r.status).toBe(200);
    expect(r.body.domain).toEqual({ host: 'local', name: reader.name, uuid: reader.uuid });
    const direct = agentCommand(reader.name, { execute: 'guest-get-osinfo' }) as Record<string, string>;
    expect(r.body.os).toMatchObject({
      id: 'qga-test',
      name: 'qga-gateway test guest',
      versionId: '1',
      machine: 'x86_64',
      kernelRelease: direct['kernel-release'],
      variant: null,
    });
  });

  it('GET /hostname is the domain name the guest took from SMBIOS', async () => {
    const r = await get(`/domains/${reader.name}/hostname`);
    expect(r.status).toBe(200);
    expect(r.body.hostname).toBe(reader.name);
  });

  it('GET /timezone is UTC', async () => {
    expect((await get(`/domains/${reader.name}/timezone`)).body).toMatchObject({ zone: 'UTC', offsetSeconds: 0 });
  });

  it('GET /users, /filesystems, /disks and /disk-stats answer lists (empty in this initramfs guest)', async () => {
    for (const [path, key] of [
      ['users', 'users'],
      ['filesystems', 'filesystems'],
      ['disks', 'disks'],
      ['disk-stats', 'disks'],
    ] as const) {
      const r = await get(`/domains/${reader.name}/${path}`);
      expect(r.status, path).toBe(200);
      expect(Array.isArray(r.body[key]), path).toBe(true);
      const direct = agentCommand(reader.name, {
        execute: `guest-get-${path === 'disk-stats' ? 'diskstats' : path === 'filesystems' ? 'fsinfo' : path}`,
      }) as unknown[];
      expect(r.body[key], path).toHaveLength(direct.length);
    }
  });

  it('GET /cpu-stats has one linux entry per vCPU, in milliseconds', async () => {
    const r = await get(`/domains/${reader.name}/cpu-stats`);
    expect(r.status).toBe(200);
    expect(r.body.cpus).toHaveLength(1);
    expect(r.body.cpus[0]).toMatchObject({
      cpu: 0,
      type: 'linux',
      userMs: expect.any(Number),
      idleMs: expect.any(Number),
      guestNiceMs: expect.any(Number),
    });
    expect(r.body.cpus[0].idleMs).toBeGreaterThan(0);
  });

  it.each([
    ['load', 'guest-get-load'],
    ['routes', 'guest-network-get-route'],
  ])("GET /%s answers 501 with qemu-ga's version: 7.2 has no %s", async (path, command) => {
    const r = await get(`/domains/${reader.name}/${path}`);
    expect(r.status).toBe(501);
    expect(r.type).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({ code: 'command_not_supported', command });
    expect(r.body.agentVersion).toMatch(/^7\.2/);
  });

  it('GET /vcpus, /memory-blocks and /memory-block-info match the agent', async () => {
    const vcpus = await get(`/domains/${reader.name}/vcpus`);
    expect(vcpus.status).toBe(200);
    expect(vcpus.body).toMatchObject({ online: 1, total: 1, vcpus: [{ id: 0, online: true, canOffline: false }] });
    const blocks = await get(`/domains/${reader.name}/memory-blocks`);
    const direct = agentCommand(reader.name, { execute: 'guest-get-memory-blocks' }) as { 'phys-index': number }[];
    expect(blocks.body.blocks.map((b: { index: number }) => b.index)).toEqual(direct.map((b) => b['phys-index']).sort((a, b) => a - b));
    const info = await get(`/domains/${reader.name}/memory-block-info`);
    expect(info.body.blockSizeBytes).toBe((agentCommand(reader.name, { execute: 'guest-get-memory-block-info' }) as { size: number }).size);
  });

  it('GET /time is the guest clock, near the host clock', async () => {
    const r = await get(`/domains/${reader.name}/time`);
    expect(r.status).toBe(200);
    expect(r.body.time.iso).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);
    expect(Date.parse(r.body.time.iso)).toBe(Number(BigInt(r.body.time.ns) / 1_000_000n));
    expect(abs(BigInt(r.body.time.ns) - hostNs())).toBeLessThan(300n * SECOND);
  });

  it('answers 503 for a guest without an agent and 409 for a stopped one', async () => {
    const none = await get(`/domains/${noAgent.name}/os`);
    expect(none.status).toBe(503);
    expect(none.body.code).toBe('agent_not_configured');
    const off = await get(`/domains/${stopped.name}/vcpus`);
    expect(off.status).toBe(409);
    expect(off.body.code).toBe('domain_not_running');
  });
});

describe('guest settings (guest2, restored)', () => {
  const path = `/domains/${writer.name}`;

  it("sets the clock to a given time, from the hardware clock, then back to the host's", async () => {
    try {
      const target = hostNs() + 120n * SECOND;
      const given = await call('PUT', `${path}/time`, { time: { ns: target.toString() } });
      expect(given.status).toBe(200);
      expect(given.body).toMatchObject({ source: 'given', requested: { ns: target.toString() } });
      // The guest now runs two minutes ahead of the host.
      expect(BigInt(given.body.time.ns) - hostNs()).toBeGreaterThan(60n * SECOND);

      // The agent also wrote the RTC (hwclock -w): reading it back keeps the guest ahead.
      const rtc = await call('PUT', `${path}/time`, { source: 'hardware-clock' });
      expect(rtc.status).toBe(200);
      expect(rtc.body.requested).toBeNull();
      expect(BigInt(rtc.body.time.ns) - hostNs()).toBeGreaterThan(60n * SECOND);

      const host = await call('PUT', `${path}/time`, { source: 'host' });
      expect(host.status).toBe(200);
      expect(abs(BigInt(host.body.time.ns) - hostNs())).toBeLessThan(30n * SECOND);
    } finally {
      await call('PUT', `${path}/time`, { source: 'host' });
    }
  });

  it('answers 400 for times out of range, and for one the guest kernel refuses (before it booted)', async () => {
    try {
      const early = await call('PUT', `${path}/time`, { time: '1969-07-20T20:17:40Z' });
      expect(early.status).toBe(400);
      expect(early.body.code).toBe('invalid_request');
      const late = await call('PUT', `${path}/time`, { time: { ns: '9300000000000000000' } });
      expect(late.status).toBe(400);
      const refused = await call('PUT', `${path}/time`, { time: '1970-01-01T00:00:01Z' });
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ code: 'invalid_request', command: 'guest-set-time' });
      expect(refused.body.agentDesc).toMatch(/Invalid argument/);
    } finally {
      await call('PUT', `${path}/time`, { source: 'host' });
    }
    const now = await get(`${path}/time`);
    expect(abs(BigInt(now.body.time.ns) - hostNs())).toBeLessThan(300n * SECOND);
  });

  it('PATCH /vcpus sets the online vCPU online (applied 1) and refuses bad requests', async () => {
    const ok = await call('PATCH', `${path}/vcpus`, { vcpus: [{ id: 0, online: true }] });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ requested: 1, applied: 1, complete: true, notApplied: [], vcpus: [{ id: 0, online: true }] });

    const lastOffline = await call('PATCH', `${path}/vcpus`, { vcpus: [{ id: 0, online: false }] });
    expect(lastOffline.status).toBe(400);
    expect(lastOffline.body.detail).toMatch(/every vCPU/);
    for (const vcpus of [
      [{ id: 3, online: true }],
      [
        { id: 0, online: true },
        { id: 0, online: true },
      ],
      [{ id: -1, online: true }],
    ]) {
      const bad = await call('PATCH', `${path}/vcpus`, { vcpus });
      expect(bad.status, JSON.stringify(vcpus)).toBe(400);
      expect(bad.body.code).toBe('invalid_request');
    }
    // Still one vCPU, online.
    expect((await get(`${path}/vcpus`)).body).toMatchObject({ online: 1, total: 1 });
  });

  it('PATCH /memory-blocks sets an online block online (success) and refuses bad requests', async () => {
    const blocks = (await get(`${path}/memory-blocks`)).body.blocks as { index: number; online: boolean }[];
    const online = blocks.find((b) => b.online)!;
    const ok = await call('PATCH', `${path}/memory-blocks`, { blocks: [{ index: online.index, online: true }] });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ applied: 1, results: [{ index: online.index, online: true, result: 'success', errno: null }] });

    const unknown = await call('PATCH', `${path}/memory-blocks`, { blocks: [{ index: 9999, online: true }] });
    expect(unknown.status).toBe(400);
    const allOffline = await call('PATCH', `${path}/memory-blocks`, { blocks: blocks.map((b) => ({ index: b.index, online: false })) });
    expect(allOffline.status).toBe(400);
    expect(allOffline.body.detail).toMatch(/every memory block/);
    expect((await get(`${path}/memory-blocks`)).body.blocks).toEqual(blocks);
  });
});
