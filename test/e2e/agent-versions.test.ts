// Every read-only resource on both agent versions this machine runs in a VM: guest1 (busybox, Debian 12's
// qemu-ga 7.2) and debian13 (a real Debian 13 with systemd, qemu-ga 10.0). Each answer is compared field by
// field with the raw reply the same agent gives virsh, parsed without rounding (agentCommandExact), so a
// field renamed between versions, a lost field or a rounded 64-bit value fails here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentCommandExact, assertProvisioned, guest, type TestGuest } from './support/guests.js';

let gw: GatewayProcess;
const v72 = guest((g) => g.name === 'guest1', 'guest1 (qemu-ga 7.2)');
const v100 = guest((g) => g.image === 'debian13', 'the Debian 13 guest (qemu-ga 10.0)');

type Raw = Record<string, any>;
const raw = (g: TestGuest, execute: string): any => agentCommandExact(g.name, { execute });

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}${path}`);
  return { status: res.status, body: await res.json() };
}
async function ok(g: TestGuest, resource: string): Promise<any> {
  const r = await get(`/domains/${g.name}/${resource}`);
  expect(r.status, `${g.name} ${resource}: ${JSON.stringify(r.body)}`).toBe(200);
  expect(r.body.domain).toEqual({ host: 'local', name: g.name, uuid: g.uuid });
  return r.body;
}
/** An integer the API may carry as a number or, beyond 2^53, as a decimal string: compared exactly. */
const exact = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));
/** Counters that only grow: the gateway's reading lies between two raw readings. */
function between(name: string, before: number | bigint, value: number | string | bigint, after: number | bigint): void {
  expect(BigInt(value), name).toBeGreaterThanOrEqual(BigInt(before));
  expect(BigInt(value), name).toBeLessThanOrEqual(BigInt(after));
}

function diskAddress(a: Raw): object {
  return expect.objectContaining({
    busType: a['bus-type'],
    bus: a.bus,
    target: a.target,
    unit: a.unit,
    serial: a.serial ?? null,
    device: a.dev ?? null,
    ...(a['pci-controller'] ? { pciController: a['pci-controller'] } : {}),
  });
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe.each([
  { label: 'qemu-ga 7.2 (busybox)', g: v72, version: /^7\.2\./ },
  { label: 'qemu-ga 10.0 (Debian 13)', g: v100, version: /^10\.0\./ },
])('$label', ({ g, version }) => {
  it('GET /agent: the version and every command with its flags, as guest-info says', async () => {
    const info = raw(g, 'guest-info');
    const body = await ok(g, 'agent');
    expect(info.version).toMatch(version);
    expect(body.version).toBe(info.version);
    const want = info.supported_commands.map((c: Raw) => ({ name: c.name, enabled: c.enabled, successResponse: c['success-response'] }));
    expect([...body.commands].sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      want.sort((a: Raw, b: Raw) => a.name.localeCompare(b.name)),
    );
  });

  it('GET /os, /hostname, /timezone: each field from the agent', async () => {
    const os = raw(g, 'guest-get-osinfo');
    expect((await ok(g, 'os')).os).toEqual({
      id: os.id ?? null,
      name: os.name ?? null,
      prettyName: os['pretty-name'] ?? null,
      version: os.version ?? null,
      versionId: os['version-id'] ?? null,
      variant: os.variant ?? null,
      variantId: os['variant-id'] ?? null,
      kernelRelease: os['kernel-release'] ?? null,
      kernelVersion: os['kernel-version'] ?? null,
      machine: os.machine ?? null,
    });
    expect((await ok(g, 'hostname')).hostname).toBe(raw(g, 'guest-get-host-name')['host-name']);
    const tz = raw(g, 'guest-get-timezone');
    expect(await ok(g, 'timezone')).toMatchObject({ zone: tz.zone ?? null, offsetSeconds: tz.offset });
  });

  it('GET /users: the same users (none: busybox has no login, Debian 13 keeps no utmp)', async () => {
    const users = raw(g, 'guest-get-users');
    const body = await ok(g, 'users');
    expect(body.users).toHaveLength(users.length);
    expect(users).toEqual([]);
  });

  it('GET /cpu-stats: one entry per vCPU, each counter between two raw readings', async () => {
    const before = raw(g, 'guest-get-cpustats');
    const body = await ok(g, 'cpu-stats');
    const after = raw(g, 'guest-get-cpustats');
    expect(body.cpus.map((c: Raw) => c.cpu)).toEqual(before.map((c: Raw) => c.cpu));
    for (const [i, c] of body.cpus.entries()) {
      expect(c.type).toBe(before[i].type);
      for (const [key, api] of [
        ['user', 'userMs'],
        ['nice', 'niceMs'],
        ['system', 'systemMs'],
        ['idle', 'idleMs'],
        ['iowait', 'iowaitMs'],
        ['irq', 'irqMs'],
        ['softirq', 'softirqMs'],
        ['steal', 'stealMs'],
        ['guest', 'guestMs'],
        ['guestnice', 'guestNiceMs'],
      ] as const) {
        between(`cpu${c.cpu}.${key}`, before[i][key], c[api], after[i][key]);
      }
    }
  });

  it('GET /filesystems and /disks: every file system and disk with its address', async () => {
    const fs = raw(g, 'guest-get-fsinfo');
    const body = await ok(g, 'filesystems');
    expect(body.filesystems).toHaveLength(fs.length);
    for (const [i, f] of fs.entries()) {
      expect(body.filesystems[i]).toMatchObject({
        name: f.name,
        mountpoint: f.mountpoint,
        type: f.type,
        totalBytes: f['total-bytes'] === undefined ? null : Number(f['total-bytes']),
        totalBytesPrivileged: f['total-bytes-privileged'] === undefined ? null : Number(f['total-bytes-privileged']),
      });
      expect(body.filesystems[i].disks).toEqual(f.disk.map(diskAddress));
    }
    const disks = raw(g, 'guest-get-disks');
    const d = await ok(g, 'disks');
    expect(d.disks).toHaveLength(disks.length);
    for (const [i, disk] of disks.entries()) {
      expect(d.disks[i]).toMatchObject({
        name: disk.name,
        partition: disk.partition,
        dependencies: disk.dependencies ?? [],
        alias: disk.alias ?? null,
      });
      if (disk.address) expect(d.disks[i].address).toEqual(diskAddress(disk.address));
    }
  });

  it('GET /disk-stats: each counter between two raw readings', async () => {
    const before = raw(g, 'guest-get-diskstats');
    const body = await ok(g, 'disk-stats');
    const after = raw(g, 'guest-get-diskstats');
    expect(body.disks.map((x: Raw) => x.name)).toEqual(before.map((x: Raw) => x.name));
    for (const [i, disk] of body.disks.entries()) {
      expect(disk).toMatchObject({ major: before[i].major, minor: before[i].minor });
      const map: Record<string, string> = {
        'read-sectors': 'readSectors',
        'read-ios': 'readIos',
        'write-sectors': 'writeSectors',
        'write-ios': 'writeIos',
        'discard-sectors': 'discardSectors',
        'flush-ios': 'flushIos',
      };
      for (const [key, api] of Object.entries(map)) {
        if (before[i].stats[key] === undefined) continue;
        between(`${disk.name}.${key}`, before[i].stats[key], disk.stats[api], after[i].stats[key]);
      }
    }
  });

  it('GET /time: the guest clock in ns, exactly, between two raw readings', async () => {
    const before = raw(g, 'guest-get-time');
    const body = await ok(g, 'time');
    const after = raw(g, 'guest-get-time');
    expect(body.time.ns).toMatch(/^\d+$/);
    // Exact to the ns the agent sent (above 2^53: never through a double).
    between('time', before, body.time.ns, after);
    expect(new Date(body.time.iso).getTime()).toBe(Number(BigInt(body.time.ns) / 1_000_000n));
  });

  it('GET /vcpus, /memory-blocks, /memory-block-info: the same entries and flags', async () => {
    const vcpus = raw(g, 'guest-get-vcpus');
    const v = await ok(g, 'vcpus');
    expect(v.vcpus).toEqual(
      vcpus
        .map((c: Raw) => ({ id: c['logical-id'], online: c.online, canOffline: c['can-offline'] ?? null }))
        .sort((a: Raw, b: Raw) => a.id - b.id),
    );
    expect(v).toMatchObject({ total: vcpus.length, online: vcpus.filter((c: Raw) => c.online).length });
    const blocks = raw(g, 'guest-get-memory-blocks');
    const b = await ok(g, 'memory-blocks');
    expect(b.blocks).toEqual(
      blocks
        .map((m: Raw) => ({ index: Number(m['phys-index']), online: m.online, canOffline: m['can-offline'] ?? null }))
        .sort((x: Raw, y: Raw) => x.index - y.index),
    );
    expect(exact((await ok(g, 'memory-block-info')).blockSizeBytes)).toBe(exact(raw(g, 'guest-get-memory-block-info').size));
  });

  it('GET /network-interfaces: names, MACs, addresses; statistics between two raw readings', async () => {
    const before = raw(g, 'guest-network-get-interfaces');
    const body = await ok(g, 'network-interfaces');
    const after = raw(g, 'guest-network-get-interfaces');
    expect(body.interfaces.map((i: Raw) => i.name)).toEqual(before.map((i: Raw) => i.name));
    for (const [n, nic] of body.interfaces.entries()) {
      const r = before[n];
      expect(nic.mac).toBe(r['hardware-address'] ?? null);
      expect(nic.addresses).toEqual(
        (r['ip-addresses'] ?? []).map((a: Raw) => ({ family: a['ip-address-type'], address: a['ip-address'], prefix: a.prefix })),
      );
      if (r.statistics) {
        for (const [key, api] of [
          ['rx-bytes', 'rxBytes'],
          ['rx-packets', 'rxPackets'],
          ['tx-bytes', 'txBytes'],
          ['tx-packets', 'txPackets'],
        ] as const) {
          between(`${nic.name}.${key}`, r.statistics[key], nic.statistics[api], after[n].statistics[key]);
        }
      }
    }
  });

  it("GET /fsfreeze: the agent's own status", async () => {
    const status = raw(g, 'guest-fsfreeze-status');
    expect((await ok(g, 'fsfreeze')).status).toBe(status);
  });
});

describe('only qemu-ga 10.0 has them; 7.2 answers 501 with the version it has', () => {
  it.each(['load', 'routes'])('GET /%s on qemu-ga 7.2 is 501 command_not_supported', async (resource) => {
    const r = await get(`/domains/${v72.name}/${resource}`);
    expect(r.status).toBe(501);
    expect(r.body).toMatchObject({ code: 'command_not_supported', agentVersion: raw(v72, 'guest-info').version });
  });

  it('GET /load on qemu-ga 10.0: load1m/load5m/load15m, near the raw reading', async () => {
    const before = raw(v100, 'guest-get-load');
    const body = await ok(v100, 'load');
    for (const [key, api] of [
      ['load1m', 'load1'],
      ['load5m', 'load5'],
      ['load15m', 'load15'],
    ] as const) {
      // The load moves between two calls; the 15-minute average barely does.
      expect(Math.abs(body[api] - before[key]), api).toBeLessThan(key === 'load15m' ? 0.2 : 2);
    }
  });
  // GET /routes on qemu-ga 10.0, field by field and against the guest's kernel tables: debian13-facts.test.ts.
});
