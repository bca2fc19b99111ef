// Guest facts routes in process against the fake libvirtd: normalisation of every agent reply, the 501 of an
// agent that lacks a command, and the agent's errors.
import { describe, expect, it } from 'vitest';
import type { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { fakeGuestState, guestFactsAgent, type FakeGuestState } from '../support/guest-facts-agent.js';
import { build, request } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let state: FakeGuestState;

async function setup() {
  state = fakeGuestState();
  ({ fake, gw } = await build({ domains: ['web1'], agent: guestFactsAgent(state) }));
}

const get = (url: string) => request(gw!, 'GET', url);

const sent = () => fake!.agentLog.filter((e) => e.execute !== 'guest-info').map((e) => e.execute);

describe('guest facts', () => {
  it('GET /os normalises os-release and uname, null for what the guest lacks', async () => {
    await setup();
    const r = await get('/domains/web1/os');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      domain: { host: 'local', name: 'web1', uuid: fake!.domain('web1').uuid },
      // qemu-ga 10.0.13 in Debian 13 (recorded): os-release has no VARIANT.
      os: {
        id: 'debian',
        name: 'Debian GNU/Linux',
        prettyName: 'Debian GNU/Linux 13 (trixie)',
        version: '13 (trixie)',
        versionId: '13',
        variant: null,
        variantId: null,
        kernelRelease: '6.12.117+deb13-amd64',
        kernelVersion: '#1 SMP PREEMPT_DYNAMIC Debian 6.12.117-1 (2026-11-12)',
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

  const VDA = {
    busType: 'virtio',
    pciController: { domain: 0, bus: 0, slot: 4, function: 0 },
    bus: 0,
    target: 0,
    unit: 0,
    serial: null,
    device: '/dev/vda',
  };

  it('GET /filesystems gives used and total bytes and the disk addresses (qemu-ga 10.0.13, recorded)', async () => {
    await setup();
    const r = await get('/domains/web1/filesystems');
    expect(r.status).toBe(200);
    expect(r.body.filesystems).toEqual([
      {
        name: 'vda',
        mountpoint: '/',
        type: 'ext4',
        usedBytes: 380207104,
        totalBytes: 1449746432,
        totalBytesPrivileged: 1547051008,
        disks: [VDA],
      },
    ]);
  });

  it('GET /filesystems: qemu-ga 7.2 has no total-bytes-privileged (since 9.1): null', async () => {
    await setup();
    state.version = '7.2';
    const r = await get('/domains/web1/filesystems');
    expect(r.body.filesystems).toEqual([
      { name: 'vda', mountpoint: '/data', type: 'ext4', usedBytes: 15360, totalBytes: 14075904, totalBytesPrivileged: null, disks: [VDA] },
    ]);
  });

  it('GET /filesystems: a filesystem the agent could not statvfs has no byte counts', async () => {
    await setup();
    state.replies['guest-get-fsinfo'] = { return: [{ name: 'sr0', mountpoint: '/media', type: 'iso9660', disk: [] }] };
    const r = await get('/domains/web1/filesystems');
    expect(r.body.filesystems).toEqual([
      { name: 'sr0', mountpoint: '/media', type: 'iso9660', usedBytes: null, totalBytes: null, totalBytesPrivileged: null, disks: [] },
    ]);
  });

  it.each(['7.2', '10.0'] as const)('GET /disks (qemu-ga %s, recorded): the virtio disk, its address, no SMART data', async (version) => {
    await setup();
    state.version = version;
    const r = await get('/domains/web1/disks');
    expect(r.body.disks).toEqual([{ name: '/dev/vda', partition: false, dependencies: [], address: VDA, alias: null, smart: null }]);
  });

  it('GET /disks camelCases SMART data and fills absent members', async () => {
    await setup();
    // Not recorded (no NVMe disk or device-mapper here): GuestDiskInfo's shape from qga/qapi-schema.json 7.1+.
    state.replies['guest-get-disks'] = {
      return: [
        {
          name: '/dev/nvme0n1',
          partition: false,
          dependencies: [],
          address: {
            'pci-controller': { domain: 0, bus: 0, slot: 6, function: 0 },
            'bus-type': 'nvme',
            bus: 0,
            target: 0,
            unit: 0,
            dev: '/dev/nvme0n1',
          },
          smart: { type: 'nvme', 'critical-warning': 0, 'power-on-hours-lo': 12 },
        },
        { name: '/dev/dm-0', partition: false, dependencies: ['/dev/nvme0n1p2'], alias: 'root' },
      ],
    };
    const r = await get('/domains/web1/disks');
    expect(r.body.disks[0]).toMatchObject({
      name: '/dev/nvme0n1',
      partition: false,
      address: { busType: 'nvme', serial: null },
      smart: { type: 'nvme', criticalWarning: 0, powerOnHoursLo: 12 },
    });
    expect(r.body.disks[1]).toEqual({
      name: '/dev/dm-0',
      partition: false,
      dependencies: ['/dev/nvme0n1p2'],
      address: null,
      alias: 'root',
      smart: null,
    });
  });

  it('GET /disk-stats renames every counter (qemu-ga 10.0.13, recorded)', async () => {
    await setup();
    const r = await get('/domains/web1/disk-stats');
    expect(r.body.disks).toEqual([
      {
        name: 'vda',
        major: 254,
        minor: 0,
        stats: {
          readSectors: 100618,
          readIos: 1233,
          readMerges: 450,
          readMs: 1044,
          writeSectors: 182712,
          writeIos: 398,
          writeMerges: 288,
          writeMs: 1552,
          discardSectors: 2740400,
          discardIos: 19,
          discardMerges: 0,
          discardMs: 22,
          flushIos: 52,
          flushMs: 127,
          iosInProgress: 0,
          ioMs: 1348,
          weightedIoMs: 2747,
        },
      },
    ]);
  });

  it('GET /disk-stats: null for the counters an older kernel lacks', async () => {
    await setup();
    state.replies['guest-get-diskstats'] = {
      return: [
        {
          name: 'vda',
          major: 254,
          minor: 0,
          stats: { 'read-sectors': 2048, 'read-ios': 100, 'read-ticks': 40, 'ios-pgr': 0, 'weight-ticks': 54 },
        },
      ],
    };
    const r = await get('/domains/web1/disk-stats');
    expect(r.body.disks[0].stats).toMatchObject({
      readSectors: 2048,
      readIos: 100,
      readMs: 40,
      iosInProgress: 0,
      weightedIoMs: 54,
      writeSectors: null,
      flushMs: null,
    });
    expect(Object.keys(r.body.disks[0].stats)).toHaveLength(17);
  });

  it('GET /cpu-stats gives milliseconds per state (qemu-ga 10.0.13 and 7.2.22, recorded)', async () => {
    await setup();
    const r = await get('/domains/web1/cpu-stats');
    expect(r.body.cpus).toEqual([
      {
        cpu: 0,
        type: 'linux',
        userMs: 10630,
        niceMs: 0,
        systemMs: 15160,
        idleMs: 153060,
        iowaitMs: 90,
        irqMs: 0,
        softirqMs: 820,
        stealMs: 0,
        guestMs: 0,
        guestNiceMs: 0,
      },
      {
        cpu: 1,
        type: 'linux',
        userMs: 10360,
        niceMs: 0,
        systemMs: 18730,
        idleMs: 149440,
        iowaitMs: 190,
        irqMs: 0,
        softirqMs: 690,
        stealMs: 0,
        guestMs: 0,
        guestNiceMs: 0,
      },
    ]);
    state.version = '7.2';
    expect((await get('/domains/web1/cpu-stats')).body.cpus).toEqual([
      {
        cpu: 0,
        type: 'linux',
        userMs: 300,
        niceMs: 0,
        systemMs: 4410,
        idleMs: 173570,
        iowaitMs: 0,
        irqMs: 0,
        softirqMs: 90,
        stealMs: 0,
        guestMs: 0,
        guestNiceMs: 0,
      },
    ]);
    state.replies['guest-get-cpustats'] = { return: [{ type: 'linux', cpu: 1, user: 1, nice: 2, system: 3, idle: 4 }] };
    expect((await get('/domains/web1/cpu-stats')).body.cpus[0]).toMatchObject({
      cpu: 1,
      userMs: 1,
      idleMs: 4,
      iowaitMs: null,
      guestNiceMs: null,
    });
  });

  it('GET /load answers the load averages of a 10.0 agent (load1m, load5m, load15m in its reply)', async () => {
    await setup();
    const r = await get('/domains/web1/load');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ domain: { name: 'web1' }, load1: 0.24853515625, load5: 0.2841796875, load15: 0.12548828125 });
    expect(sent()).toEqual(['guest-get-load']);
  });

  it.each([
    ['/load', 'guest-get-load'],
    ['/routes', 'guest-network-get-route'],
  ])('GET %s: 501 from a qemu-ga 7.2, which lacks %s', async (path, execute) => {
    await setup();
    state.version = '7.2';
    const r = await get(`/domains/web1${path}`);
    expect(r.status).toBe(501);
    expect(r.body).toMatchObject({ code: 'command_not_supported', command: execute, agentVersion: '7.2.22' });
    expect(sent()).toEqual([]);
  });

  it("GET /routes (qemu-ga 10.0.13, recorded): IPv4 and IPv6 routes, with the kernel's unsigned metric and flags", async () => {
    await setup();
    const r = await get('/domains/web1/routes');
    expect(r.status).toBe(200);
    expect(r.body.routes[0]).toEqual({
      interface: 'ens2',
      ipVersion: 4,
      destination: '0.0.0.0',
      destinationPrefixLength: null,
      gateway: '10.0.2.2',
      mask: '0.0.0.0',
      nextHop: null,
      source: null,
      sourcePrefixLength: null,
      metric: 1024,
      flags: 3,
      refCount: 0,
      use: 0,
      window: 0,
      mtu: 0,
      initialRtt: 0,
    });
    expect(r.body.routes[4]).toMatchObject({
      ipVersion: 6,
      destination: 'fe80::',
      destinationPrefixLength: '64',
      nextHop: '::',
      gateway: null,
      mask: null,
      window: null,
      flags: 1,
      metric: 256,
    });
    // 18446744071564165121 in the reply: the kernel's 0x80200001 (as /proc/net/ipv6_route has it), sign-extended.
    expect(r.body.routes[7]).toMatchObject({ interface: 'lo', destination: '::1', flags: 0x80200001, metric: 0, refCount: 2 });
    // metric -1 in the reply: the kernel's 0xffffffff.
    expect(r.body.routes[11]).toMatchObject({ interface: 'lo', destination: '::', flags: 0x00200200, metric: 4294967295 });
    expect(r.body.routes).toHaveLength(12);
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
    expect(failed.body).toMatchObject({
      code: 'agent_error',
      agentDesc: 'failed to open /proc/self/mountinfo',
      command: 'guest-get-fsinfo',
    });
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
