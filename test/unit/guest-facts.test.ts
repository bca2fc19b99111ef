// Guest facts routes in process against the fake libvirtd: normalisation of every agent reply, the 501 of an
// agent that lacks a command, and the agent's errors.
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { fakeGuestState, guestFactsAgent, type FakeGuestState } from '../support/guest-facts-agent.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let state: FakeGuestState;

afterEach(async () => {
  await gw?.close();
  await fake?.stop();
  gw = null;
  fake = null;
});

async function setup() {
  fake = await FakeLibvirtd.start();
  fake.addDomain({ name: 'web1' });
  state = fakeGuestState();
  fake.agentHandler = guestFactsAgent(state);
  gw = await startTestGateway(fake.uri);
}

async function get(url: string) {
  const res = await gw!.app.inject({ method: 'GET', url });
  return { status: res.statusCode, body: res.json(), headers: res.headers };
}

const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info').map((e) => e.execute);

describe('guest facts', () => {
  it('GET /os normalises os-release and uname, null for what the guest lacks', async () => {
    await setup();
    const r = await get('/domains/web1/os');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      domain: { host: 'local', name: 'web1', uuid: fake!.domain('web1').uuid },
      os: {
        id: 'alpine',
        name: 'Alpine Linux',
        prettyName: 'Alpine Linux v3.20',
        version: null,
        versionId: '3.20.3',
        variant: null,
        variantId: null,
        kernelRelease: '6.6.58-0-virt',
        kernelVersion: '#1-Alpine SMP PREEMPT_DYNAMIC',
        machine: 'x86_64',
      },
    });
    expect(sent()).toEqual(['guest-get-osinfo']);
  });

  it('GET /hostname and /timezone', async () => {
    await setup();
    expect((await get('/domains/web1/hostname')).body).toMatchObject({ hostname: 'web1' });
    expect((await get('/domains/web1/timezone')).body).toMatchObject({ zone: 'UTC', offsetSeconds: 0 });
    state.replies['guest-get-timezone'] = { return: { offset: -18000 } };
    expect((await get('/domains/web1/timezone')).body).toMatchObject({ zone: null, offsetSeconds: -18000 });
  });

  it('GET /users gives ISO login times and the logon domain', async () => {
    await setup();
    const r = await get('/domains/web1/users');
    expect(r.body.users).toEqual([
      { user: 'root', logonDomain: null, loginTime: '2026-11-28T00:01:02.500Z', loginTimeSeconds: 1795824062.5 },
      { user: 'alice', logonDomain: 'CORP', loginTime: '2026-11-28T00:00:00.000Z', loginTimeSeconds: 1795824000 },
    ]);
  });

  it('GET /filesystems gives used and total bytes and the disk addresses', async () => {
    await setup();
    const r = await get('/domains/web1/filesystems');
    expect(r.status).toBe(200);
    expect(r.body.filesystems).toEqual([
      {
        name: 'vda1',
        mountpoint: '/',
        type: 'ext4',
        usedBytes: 1073741824,
        totalBytes: 10737418240,
        totalBytesPrivileged: null,
        disks: [{ busType: 'virtio', pciController: { domain: 0, bus: 0, slot: 5, function: 0 }, bus: 0, target: 0, unit: 0, serial: 'SN1', device: '/dev/vda1' }],
      },
      { name: 'sr0', mountpoint: '/media', type: 'iso9660', usedBytes: null, totalBytes: null, totalBytesPrivileged: null, disks: [] },
    ]);
  });

  it('GET /disks camelCases SMART data and fills absent members', async () => {
    await setup();
    const r = await get('/domains/web1/disks');
    expect(r.body.disks[0]).toMatchObject({ name: '/dev/nvme0n1', partition: false, address: { busType: 'nvme', serial: null }, smart: { type: 'nvme', criticalWarning: 0, powerOnHoursLo: 12 } });
    expect(r.body.disks[1]).toEqual({ name: '/dev/dm-0', partition: false, dependencies: ['/dev/nvme0n1p2'], address: null, alias: 'root', smart: null });
  });

  it('GET /disk-stats renames the counters, null for absent ones', async () => {
    await setup();
    const r = await get('/domains/web1/disk-stats');
    expect(r.body.disks[0]).toMatchObject({ name: 'vda', major: 254, minor: 0 });
    expect(r.body.disks[0].stats).toMatchObject({ readSectors: 2048, readIos: 100, readMs: 40, iosInProgress: 0, weightedIoMs: 54, writeSectors: null, flushMs: null });
    expect(Object.keys(r.body.disks[0].stats)).toHaveLength(17);
  });

  it('GET /cpu-stats gives milliseconds per state', async () => {
    await setup();
    const r = await get('/domains/web1/cpu-stats');
    expect(r.body.cpus[0]).toEqual({ cpu: 0, type: 'linux', userMs: 420, niceMs: 0, systemMs: 4620, idleMs: 341530, iowaitMs: 0, irqMs: 0, softirqMs: 70, stealMs: 0, guestMs: 0, guestNiceMs: 0 });
    expect(r.body.cpus[1]).toMatchObject({ cpu: 1, userMs: 1, idleMs: 4, iowaitMs: null, guestNiceMs: null });
  });

  it('GET /load answers the load averages of a 10.0 agent', async () => {
    await setup();
    const r = await get('/domains/web1/load');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ domain: { name: 'web1' }, load1: 0.5, load5: 0.25, load15: 0.125 });
    expect(sent()).toEqual(['guest-get-load']);
  });

  it('GET /routes normalises IPv4 and IPv6 routes', async () => {
    await setup();
    const r = await get('/domains/web1/routes');
    expect(r.status).toBe(200);
    expect(r.body.routes[0]).toEqual({
      interface: 'eth0',
      ipVersion: 4,
      destination: '0.0.0.0',
      destinationPrefixLength: null,
      gateway: '10.0.2.2',
      mask: '0.0.0.0',
      nextHop: null,
      source: null,
      sourcePrefixLength: null,
      metric: 0,
      flags: 3,
      refCount: 0,
      use: 0,
      window: 0,
      mtu: 0,
      initialRtt: 0,
    });
    expect(r.body.routes[1]).toMatchObject({ ipVersion: 6, destination: 'fe80::', destinationPrefixLength: '64', nextHop: '::', gateway: null, mask: null, window: null });
  });

  it.each([
    ['/load', 'guest-get-load'],
    ['/routes', 'guest-network-get-route'],
    ['/disk-stats', 'guest-get-diskstats'],
  ])('GET %s answers 501 with the agent version when the agent lacks %s, without sending it', async (path, execute) => {
    await setup();
    state.missing.add(execute);
    const r = await get(`/domains/web1${path}`);
    expect(r.status).toBe(501);
    expect(r.headers['content-type']).toMatch(/problem\+json/);
    expect(r.body).toMatchObject({ code: 'command_not_supported', command: execute, agentVersion: '10.0.2' });
    expect(sent()).toEqual([]);
  });

  it('maps an agent error to 502 and a malformed reply to 502 agent_reply_invalid', async () => {
    await setup();
    state.replies['guest-get-fsinfo'] = { error: { class: 'GenericError', desc: 'failed to open /proc/self/mountinfo' } };
    const failed = await get('/domains/web1/filesystems');
    expect(failed.status).toBe(502);
    expect(failed.body).toMatchObject({ code: 'agent_error', agentDesc: 'failed to open /proc/self/mountinfo', command: 'guest-get-fsinfo' });
    state.replies['guest-get-cpustats'] = { return: [{ cpu: 0 }] };
    const bad = await get('/domains/web1/cpu-stats');
    expect(bad.status).toBe(502);
    expect(bad.body.code).toBe('agent_reply_invalid');
  });

  it('answers 404 for an unknown domain', async () => {
    await setup();
    const r = await get('/domains/nope/os');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('domain_not_found');
  });
});
