// Typed agent commands that read facts about the guest (qga/qapi-schema.json): OS, host name, time zone,
// users, filesystems, disks and their statistics, CPU statistics, load and routes. All read-only.
// Replies are loose objects: newer agents add fields (total-bytes-privileged, smart, ...).
import { z } from 'zod';
import { command, noArgs } from './define.js';
import { agentInt64, agentUint64 } from '../core/reply-integers.js';

export const guestGetOsinfo = command(
  'guest-get-osinfo',
  'query',
  noArgs,
  // Every member is optional: on POSIX they come from os-release and uname, absent when the guest lacks them.
  z.looseObject({
    'kernel-release': z.string().optional(),
    'kernel-version': z.string().optional(),
    machine: z.string().optional(),
    id: z.string().optional(),
    name: z.string().optional(),
    'pretty-name': z.string().optional(),
    version: z.string().optional(),
    'version-id': z.string().optional(),
    variant: z.string().optional(),
    'variant-id': z.string().optional(),
  }),
);

export const guestGetHostName = command('guest-get-host-name', 'query', noArgs, z.looseObject({ 'host-name': z.string() }));

export const guestGetTimezone = command('guest-get-timezone', 'query', noArgs, z.looseObject({ zone: z.string().optional(), offset: z.number().int() }));

export const guestGetUsers = command(
  'guest-get-users',
  'query',
  noArgs,
  // login-time: fractional seconds since the epoch; domain: the logon domain (Windows only).
  z.array(z.looseObject({ user: z.string(), 'login-time': z.number(), domain: z.string().optional() })),
);

const pciAddress = z.looseObject({ domain: z.number().int(), bus: z.number().int(), slot: z.number().int(), function: z.number().int() });

export const diskAddressReply = z.looseObject({
  'pci-controller': pciAddress,
  'bus-type': z.string(),
  bus: z.number().int(),
  target: z.number().int(),
  unit: z.number().int(),
  serial: z.string().optional(),
  dev: z.string().optional(),
});
export type DiskAddressReply = z.infer<typeof diskAddressReply>;

export const guestGetFsinfoReply = z.array(
  z.looseObject({
    name: z.string(),
    mountpoint: z.string(),
    type: z.string(),
    // uint64; all three absent when statvfs fails (a mount point the agent cannot read).
    'used-bytes': agentUint64().optional(),
    'total-bytes': agentUint64().optional(),
    // Since 9.1 (qemu-ga 7.2 lacks it): the total a privileged user sees (reserved blocks included).
    'total-bytes-privileged': agentUint64().optional(),
    disk: z.array(diskAddressReply),
  }),
);
export const guestGetFsinfo = command('guest-get-fsinfo', 'query', noArgs, guestGetFsinfoReply);

export const guestGetDisksReply = z.array(
  z.looseObject({
    name: z.string(),
    partition: z.boolean(),
    dependencies: z.array(z.string()).optional(),
    address: diskAddressReply.optional(),
    alias: z.string().optional(),
    // A union on 'type' (only nvme so far): passed on with its keys in camelCase.
    smart: z.looseObject({ type: z.string() }).optional(),
  }),
);
export const guestGetDisks = command('guest-get-disks', 'query', noArgs, guestGetDisksReply);

/** GuestDiskStats: every member optional (the kernel may not have them all). */
export const DISK_STAT_KEYS = [
  'read-sectors',
  'read-ios',
  'read-merges',
  'write-sectors',
  'write-ios',
  'write-merges',
  'discard-sectors',
  'discard-ios',
  'discard-merges',
  'flush-ios',
  'read-ticks',
  'write-ticks',
  'discard-ticks',
  'flush-ticks',
  'ios-pgr',
  'total-ticks',
  'weight-ticks',
] as const;

const optionalCounter = () => agentUint64().optional();
export const guestGetDiskstatsReply = z.array(
  z.looseObject({
    name: z.string(),
    // uint64 in the schema; device numbers are 32 bits in Linux.
    major: z.number().int(),
    minor: z.number().int(),
    stats: z.looseObject(Object.fromEntries(DISK_STAT_KEYS.map((k) => [k, optionalCounter()])) as Record<(typeof DISK_STAT_KEYS)[number], ReturnType<typeof optionalCounter>>),
  }),
);
export const guestGetDiskstats = command('guest-get-diskstats', 'query', noArgs, guestGetDiskstatsReply);

/** GuestLinuxCpuStats (type 'linux'), uint64 milliseconds; user, nice, system and idle are always there. */
export const CPU_STAT_KEYS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal', 'guest', 'guestnice'] as const;

export const guestGetCpustatsReply = z.array(
  z.looseObject({
    type: z.string(),
    cpu: z.number().int().optional(),
    ...(Object.fromEntries(CPU_STAT_KEYS.map((k) => [k, optionalCounter()])) as Record<(typeof CPU_STAT_KEYS)[number], ReturnType<typeof optionalCounter>>),
  }),
);
export const guestGetCpustats = command('guest-get-cpustats', 'query', noArgs, guestGetCpustatsReply);

/** Since qemu-ga 10.0 (Linux with getloadavg; Windows emulates it since 10.1). */
// qga/qapi-schema.json GuestLoadAverage (10.0): load1m, load5m, load15m (doubles); as qemu-ga 10.0.13 answers here.
export const guestGetLoad = command('guest-get-load', 'query', noArgs, z.looseObject({ load1m: z.number(), load5m: z.number(), load15m: z.number() }));

/**
 * Since qemu-ga 9.1 (Linux), 11.0 (Windows, without flags, refcnt, use, window, mtu, irtt). Every number is the
 * kernel's u32, but the agent sends them as it read them into a C int: negative (-1 for an IPv6 metric of
 * 0xffffffff) or, for IPv6 flags (uint64 in the schema), sign-extended to 64 bits (18446744071564165121 for
 * 0x80200001, recorded from qemu-ga 10.0.13): any integer is accepted here, exactly; kernelU32() undoes both.
 */
const routeNumber = () => agentInt64();
export const guestNetworkGetRouteReply = z.array(
  z.looseObject({
    iface: z.string(),
    destination: z.string(),
    metric: routeNumber(),
    gateway: z.string().optional(),
    mask: z.string().optional(),
    irtt: routeNumber().optional(),
    flags: routeNumber().optional(),
    refcnt: routeNumber().optional(),
    use: routeNumber().optional(),
    window: routeNumber().optional(),
    mtu: routeNumber().optional(),
    desprefixlen: z.string().optional(),
    source: z.string().optional(),
    srcprefixlen: z.string().optional(),
    nexthop: z.string().optional(),
    version: z.number().int(),
  }),
);
export const guestNetworkGetRoute = command('guest-network-get-route', 'query', noArgs, guestNetworkGetRouteReply);
