// Facts of a real systemd guest (debian13: Debian 13, qemu-ga 10.0, ext4 root on a virtio disk) through the built
// gateway: file systems, disks and their counters, load and routes. Each answer is checked field by field against
// the raw reply of the same agent (virsh, read without rounding) and against the guest's own view (statfs, sysfs,
// procfs, ip). Counters and load move on their own: the gateway's answer is taken between two raw replies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentCommand } from './support/guests.js';
import { DOM, DOMAIN_REF, assertDebian13, call, rawExact, sh } from './support/debian13.js';

let gw: GatewayProcess;
const get = (path: string) => call(gw.url, 'GET', `/domains/${DOM}${path}`);

beforeAll(async () => {
  await assertDebian13();
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

interface RawAddress {
  'bus-type': string;
  'pci-controller': { domain: number; bus: number; slot: number; function: number };
  bus: number;
  target: number;
  unit: number;
  serial?: string;
  dev?: string;
}
const address = (a: RawAddress) => ({
  busType: a['bus-type'],
  pciController: {
    domain: a['pci-controller'].domain,
    bus: a['pci-controller'].bus,
    slot: a['pci-controller'].slot,
    function: a['pci-controller'].function,
  },
  bus: a.bus,
  target: a.target,
  unit: a.unit,
  serial: a.serial ?? null,
  device: a.dev ?? null,
});

/** The PCI address of the guest's vda, from its sysfs path (/sys/devices/pci0000:00/0000:00:04.0/virtio2/block/vda). */
async function vdaPciAddress(): Promise<{ domain: number; bus: number; slot: number; function: number }> {
  const path = (await sh('readlink -f /sys/block/vda')).trim();
  const m = /\/([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])\/virtio\d+\/block\/vda$/.exec(path);
  if (!m) throw new Error(`unexpected sysfs path of vda: ${path}`);
  return { domain: parseInt(m[1]!, 16), bus: parseInt(m[2]!, 16), slot: parseInt(m[3]!, 16), function: Number(m[4]) };
}

describe('storage of debian13', () => {
  it('GET /filesystems: the ext4 root on /dev/vda (virtio), as guest-get-fsinfo and statfs say', async () => {
    const before = agentCommand(DOM, { execute: 'guest-get-fsinfo' }) as Record<string, any>[];
    const r = await get('/filesystems');
    const after = agentCommand(DOM, { execute: 'guest-get-fsinfo' }) as Record<string, any>[];
    expect(r.status).toBe(200);
    expect(r.body.domain).toEqual(DOMAIN_REF);
    expect(r.body.filesystems.map((f: { mountpoint: string }) => f.mountpoint).sort()).toEqual(before.map((f) => f.mountpoint).sort());
    for (const raw of before) {
      const api = r.body.filesystems.find((f: { mountpoint: string }) => f.mountpoint === raw.mountpoint);
      const rawAfter = after.find((f) => f.mountpoint === raw.mountpoint)!;
      expect(api, raw.mountpoint).toEqual({
        name: raw.name,
        mountpoint: raw.mountpoint,
        type: raw.type,
        usedBytes: expect.any(Number),
        totalBytes: raw['total-bytes'],
        totalBytesPrivileged: raw['total-bytes-privileged'],
        disks: raw.disk.map(address),
      });
      // The journal writes meanwhile: used bytes lie between the two raw replies (a little slack for metadata).
      expect(api.usedBytes).toBeGreaterThanOrEqual(Math.min(raw['used-bytes'], rawAfter['used-bytes']) - 4 * 1024 * 1024);
      expect(api.usedBytes).toBeLessThanOrEqual(Math.max(raw['used-bytes'], rawAfter['used-bytes']) + 4 * 1024 * 1024);
    }

    const root = r.body.filesystems.find((f: { mountpoint: string }) => f.mountpoint === '/');
    expect(root).toMatchObject({
      name: 'vda',
      type: 'ext4',
      disks: [{ busType: 'virtio', device: '/dev/vda', pciController: await vdaPciAddress() }],
    });
    // The guest's own view: findmnt and statfs (qemu-ga: total = (blocks - bfree + bavail) * frsize, privileged = blocks * frsize).
    expect((await sh('findmnt -n -o SOURCE,FSTYPE /')).trim().split(/\s+/)).toEqual(['/dev/vda', 'ext4']);
    const [frsize, blocks, bfree, bavail] = (await sh("stat -f -c '%S %b %f %a' /")).trim().split(' ').map(Number) as [
      number,
      number,
      number,
      number,
    ];
    expect(root.totalBytesPrivileged).toBe(blocks * frsize);
    expect(root.totalBytes).toBe((blocks - bfree + bavail) * frsize);
    expect(Math.abs(root.usedBytes - (blocks - bfree) * frsize)).toBeLessThanOrEqual(4 * 1024 * 1024);
  });

  it('GET /disks: /dev/vda, a whole disk on virtio, as guest-get-disks and sysfs say', async () => {
    const raw = agentCommand(DOM, { execute: 'guest-get-disks' }) as Record<string, any>[];
    const r = await get('/disks');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      domain: DOMAIN_REF,
      disks: raw.map((d) => ({
        name: d.name,
        partition: d.partition,
        dependencies: d.dependencies ?? [],
        address: d.address ? address(d.address) : null,
        alias: d.alias ?? null,
        smart: null,
      })),
    });
    const vda = r.body.disks.find((d: { name: string }) => d.name === '/dev/vda');
    expect(vda).toMatchObject({
      partition: false,
      dependencies: [],
      alias: null,
      address: { busType: 'virtio', device: '/dev/vda', pciController: await vdaPciAddress() },
    });
    // The guest has that one disk, unpartitioned.
    expect((await sh('ls /sys/block')).split(/\s+/).filter((n) => n && !/^(loop|ram|sr|zram)/.test(n))).toEqual(['vda']);
    expect((await sh('ls /sys/block/vda')).split(/\s+/).filter((n) => n.startsWith('vda'))).toEqual([]);
  });

  it('GET /disk-stats: every counter of vda lies between two guest-get-diskstats replies and below /sys/block/vda/stat', async () => {
    const NAMES: Record<string, string> = {
      'read-sectors': 'readSectors',
      'read-ios': 'readIos',
      'read-merges': 'readMerges',
      'read-ticks': 'readMs',
      'write-sectors': 'writeSectors',
      'write-ios': 'writeIos',
      'write-merges': 'writeMerges',
      'write-ticks': 'writeMs',
      'discard-sectors': 'discardSectors',
      'discard-ios': 'discardIos',
      'discard-merges': 'discardMerges',
      'discard-ticks': 'discardMs',
      'flush-ios': 'flushIos',
      'flush-ticks': 'flushMs',
      'ios-pgr': 'iosInProgress',
      'total-ticks': 'ioMs',
      'weight-ticks': 'weightedIoMs',
    };
    type RawStats = { name: string; major: number; minor: number; stats: Record<string, number> }[];
    const before = agentCommand(DOM, { execute: 'guest-get-diskstats' }) as RawStats;
    const r = await get('/disk-stats');
    const after = agentCommand(DOM, { execute: 'guest-get-diskstats' }) as RawStats;
    // /sys/block/vda/stat, read last: read ios, merges, sectors, ticks; write (4); in flight, io ticks, weighted; discard (4); flush ios, ticks.
    const sys = (await sh('cat /sys/block/vda/stat')).trim().split(/\s+/).map(Number);
    const sysByKey: Record<string, number> = {
      'read-ios': sys[0]!,
      'read-merges': sys[1]!,
      'read-sectors': sys[2]!,
      'read-ticks': sys[3]!,
      'write-ios': sys[4]!,
      'write-merges': sys[5]!,
      'write-sectors': sys[6]!,
      'write-ticks': sys[7]!,
      'total-ticks': sys[9]!,
      'weight-ticks': sys[10]!,
      'discard-ios': sys[11]!,
      'discard-merges': sys[12]!,
      'discard-sectors': sys[13]!,
      'discard-ticks': sys[14]!,
      'flush-ios': sys[15]!,
      'flush-ticks': sys[16]!,
    };
    expect(r.status).toBe(200);
    expect(r.body.domain).toEqual(DOMAIN_REF);
    expect(r.body.disks.map((d: { name: string }) => d.name)).toEqual(before.map((d) => d.name));
    const rawVda = before.find((d) => d.name === 'vda')!;
    const rawVdaAfter = after.find((d) => d.name === 'vda')!;
    const vda = r.body.disks.find((d: { name: string }) => d.name === 'vda');
    expect(`${vda.major}:${vda.minor}`).toBe(`${rawVda.major}:${rawVda.minor}`);
    expect(`${vda.major}:${vda.minor}`).toBe((await sh('cat /sys/block/vda/dev')).trim());
    expect(Object.keys(vda.stats).sort()).toEqual(Object.values(NAMES).sort());
    expect(Object.keys(rawVda.stats).sort()).toEqual(Object.keys(NAMES).sort());
    for (const [key, name] of Object.entries(NAMES)) {
      const value = vda.stats[name];
      expect(typeof value, name).toBe('number');
      // I/Os in progress: a gauge, not a counter, so no order between two readings.
      if (key === 'ios-pgr') continue;
      expect(value, name).toBeGreaterThanOrEqual(rawVda.stats[key]!);
      expect(value, name).toBeLessThanOrEqual(rawVdaAfter.stats[key]!);
      expect(value, name).toBeLessThanOrEqual(sysByKey[key]!);
    }
    // The guest really read from its disk since boot.
    expect(vda.stats.readIos).toBeGreaterThan(0);
  });
});

describe('load and routes of debian13 (qemu-ga 10 only)', () => {
  it('GET /load is guest-get-load (load1m/5m/15m as load1/5/15) and /proc/loadavg', async () => {
    // The kernel recomputes the averages every 5 s: retry until the raw replies around the call agree.
    for (let attempt = 1; ; attempt++) {
      const before = agentCommand(DOM, { execute: 'guest-get-load' }) as { load1m: number; load5m: number; load15m: number };
      const r = await get('/load');
      const after = agentCommand(DOM, { execute: 'guest-get-load' }) as typeof before;
      expect(r.status).toBe(200);
      if (JSON.stringify(before) !== JSON.stringify(after) && attempt < 5) continue;
      expect(r.body).toEqual({ domain: DOMAIN_REF, load1: expect.any(Number), load5: expect.any(Number), load15: expect.any(Number) });
      expect([before.load1m, after.load1m]).toContain(r.body.load1);
      expect([before.load5m, after.load5m]).toContain(r.body.load5);
      expect([before.load15m, after.load15m]).toContain(r.body.load15);
      break;
    }
    // /proc/loadavg rounds to hundredths; qemu-ga's values are the kernel's fixed point (a multiple of 1/2048).
    for (let attempt = 1; ; attempt++) {
      const before = agentCommand(DOM, { execute: 'guest-get-load' }) as { load1m: number; load5m: number; load15m: number };
      const proc = (await sh('cat /proc/loadavg')).trim().split(' ').slice(0, 3).map(Number);
      const r = await get('/load');
      const after = agentCommand(DOM, { execute: 'guest-get-load' }) as typeof before;
      if (JSON.stringify(before) !== JSON.stringify(after) && attempt < 5) continue;
      expect(Math.abs(r.body.load1 - proc[0]!)).toBeLessThanOrEqual(0.006);
      expect(Math.abs(r.body.load5 - proc[1]!)).toBeLessThanOrEqual(0.006);
      expect(Math.abs(r.body.load15 - proc[2]!)).toBeLessThanOrEqual(0.006);
      for (const v of [r.body.load1, r.body.load5, r.body.load15]) expect(Number.isInteger(v * 2048)).toBe(true);
      break;
    }
  });

  /** An IPv6 address as the 32 hex digits /proc/net/ipv6_route shows. */
  function ipv6Hex(addr: string): string {
    const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return groups
      .map((g) => g.padStart(4, '0'))
      .join('')
      .toLowerCase();
  }
  /** /proc/net/route's little-endian hex as a dotted quad. */
  const ipv4 = (hex: string) => [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');

  it(
    "GET /routes is guest-network-get-route field by field (the kernel's u32 values, IPv6 flags beyond 2^53 undone exactly), " +
      'and the kernel tables',
    async () => {
      // Reference counts move: take the gateway's answer and the kernel's tables between two identical raw replies.
      let raw: any[] = [];
      let r: Awaited<ReturnType<typeof get>> | undefined;
      let proc4 = '';
      let proc6 = '';
      for (let attempt = 1; attempt <= 5; attempt++) {
        raw = rawExact({ execute: 'guest-network-get-route' });
        r = await get('/routes');
        proc4 = await sh('cat /proc/net/route');
        proc6 = await sh('cat /proc/net/ipv6_route');
        if (routeText(raw) === routeText(rawExact({ execute: 'guest-network-get-route' }))) break;
      }
      expect(r!.status).toBe(200);
      expect(r!.body.domain).toEqual(DOMAIN_REF);
      expect(r!.body.routes).toHaveLength(raw.length);
      expect(raw.length).toBeGreaterThan(0);
      raw.forEach((x, i) => {
        const api = r!.body.routes[i];
        expect(api, `route ${i}`).toEqual({
          interface: x.iface,
          ipVersion: x.version,
          destination: x.destination,
          destinationPrefixLength: x.desprefixlen ?? null,
          gateway: x.gateway ?? null,
          mask: x.mask ?? null,
          nextHop: x.nexthop ?? null,
          source: x.source ?? null,
          sourcePrefixLength: x.srcprefixlen ?? null,
          // The kernel's unsigned 32-bit values: qemu-ga sends -1 for a metric of 0xffffffff, and IPv6 flags
          // sign-extended to 64 bits; the gateway answers what the kernel holds, exactly.
          metric: kernelU32(x.metric),
          flags: kernelU32(x.flags),
          refCount: kernelU32(x.refcnt),
          use: kernelU32(x.use),
          window: kernelU32(x.window),
          mtu: kernelU32(x.mtu),
          initialRtt: kernelU32(x.irtt),
        });
        // Nothing but the sign extension is dropped: the raw value's upper 32 bits are all zeros or all ones.
        for (const v of [x.metric, x.flags, x.refcnt, x.use, x.window, x.mtu, x.irtt].filter((n) => n !== undefined)) {
          expect([0n, -1n], `route ${i}: ${v}`).toContain(BigInt.asIntN(64, BigInt(v)) >> 32n);
        }
      });
      // qemu-ga 10 sends some IPv6 flags beyond 2^53 (0x80200001 sign-extended: 18446744071564165121) and a metric of -1.
      expect(raw.some((x) => typeof x.flags === 'bigint' && x.flags === 18446744071564165121n)).toBe(true);
      expect(r!.body.routes.some((x: { flags: number }) => x.flags === 0x80200001)).toBe(true);
      expect(r!.text).not.toContain('18446744071564165');

      // IPv4: /proc/net/route, every line.
      const v4 = proc4
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/));
      const api4 = r!.body.routes.filter((x: { ipVersion: number }) => x.ipVersion === 4);
      expect(api4).toHaveLength(v4.length);
      for (const [iface, dst, gwHex, flags, refcnt, use, metric, mask, mtu, window, irtt] of v4) {
        const api = api4.find((x: { destination: string; mask: string }) => x.destination === ipv4(dst!) && x.mask === ipv4(mask!));
        expect(api, `${ipv4(dst!)}/${ipv4(mask!)}`).toMatchObject({
          interface: iface,
          gateway: ipv4(gwHex!),
          refCount: Number(refcnt),
          use: Number(use),
          metric: Number(metric),
          mtu: Number(mtu),
          window: Number(window),
          initialRtt: Number(irtt),
        });
        expect(api.flags).toBe(parseInt(flags!, 16));
      }
      // IPv6: /proc/net/ipv6_route (dst, dst len, src, src len, next hop, metric, refcnt, use, flags, iface).
      const v6 = proc6
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/));
      const api6 = r!.body.routes.filter((x: { ipVersion: number }) => x.ipVersion === 6);
      expect(api6).toHaveLength(v6.length);
      for (const [dst, dstLen, src, srcLen, nextHop, metric, refcnt, use, flags, iface] of v6) {
        const api = api6.find(
          (x: { destination: string; destinationPrefixLength: string; interface: string }) =>
            ipv6Hex(x.destination) === dst && Number(x.destinationPrefixLength) === parseInt(dstLen!, 16) && x.interface === iface,
        );
        expect(api, `${dst}/${dstLen} ${iface}`).toBeDefined();
        expect(ipv6Hex(api.source)).toBe(src);
        expect(Number(api.sourcePrefixLength)).toBe(parseInt(srcLen!, 16));
        expect(ipv6Hex(api.nextHop)).toBe(nextHop);
        expect(api.metric).toBe(parseInt(metric!, 16));
        expect(api.refCount).toBe(parseInt(refcnt!, 16));
        expect(api.use).toBe(parseInt(use!, 16));
        expect(api.flags).toBe(parseInt(flags!, 16));
      }
      // And as ip(8) shows it: the DHCP default route through slirp's 10.0.2.2.
      const dflt = JSON.parse(await sh('ip -j -4 route show default')) as { gateway: string; dev: string; metric: number }[];
      expect(dflt).toHaveLength(1);
      expect(api4).toContainEqual(
        expect.objectContaining({
          destination: '0.0.0.0',
          mask: '0.0.0.0',
          gateway: dflt[0]!.gateway,
          interface: dflt[0]!.dev,
          metric: dflt[0]!.metric,
        }),
      );
    },
  );
});

/** A route number of the raw reply as the kernel's unsigned 32-bit value; null when the agent sent none. */
function kernelU32(v: number | bigint | undefined): number | null {
  return v === undefined ? null : Number(BigInt.asUintN(32, BigInt(v)));
}

/** A raw route reply as text, its bigints included: equal text, equal replies. */
function routeText(raw: unknown): string {
  return JSON.stringify(raw, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}
