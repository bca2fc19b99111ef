// The guest's filesystems (with used and total bytes), its disks, and their I/O statistics.
import { z } from 'zod';
import type { ExactInteger } from '../../agent/transports/agent-json.js';
import { guestGetDisks, guestGetDiskstats, guestGetFsinfo, type DiskAddressReply } from '../../agent/commands/fs.js';
import type { Gateway } from '../../gateway.js';
import { agentQuery } from '../agent-query.js';
import type { DomainRoute } from '../domain-scope.js';
import { exactUint64 } from '../exact-integer.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from '../schemas.js';

const diskAddressSchema = z
  .object({
    busType: z.string().describe('ide, scsi, virtio, sata, usb, nvme, ... (GuestDiskBusType)'),
    pciController: z
      .object({ domain: z.number().int(), bus: z.number().int(), slot: z.number().int(), function: z.number().int() })
      .describe('-1 in every field when unknown'),
    bus: z.number().int(),
    target: z.number().int(),
    unit: z.number().int(),
    serial: z.string().nullable(),
    device: z.string().nullable().describe('Device node (/dev/vda) or Windows device path'),
  })
  .meta({ id: 'GuestDiskAddress' });

function normaliseAddress(a: DiskAddressReply): z.infer<typeof diskAddressSchema> {
  const pci = a['pci-controller'];
  return {
    busType: a['bus-type'],
    pciController: { domain: pci.domain, bus: pci.bus, slot: pci.slot, function: pci.function },
    bus: a.bus,
    target: a.target,
    unit: a.unit,
    serial: a.serial ?? null,
    device: a.dev ?? null,
  };
}

const EXAMPLE_ADDRESS = {
  busType: 'virtio',
  pciController: { domain: 0, bus: 0, slot: 5, function: 0 },
  bus: 0,
  target: 0,
  unit: 0,
  serial: null,
  device: '/dev/vda',
};

const filesystemsSchema = z
  .object({
    domain: domainRefSchema,
    filesystems: z.array(
      z.object({
        name: z.string().describe('Device name, e.g. vda1 or dm-0'),
        mountpoint: z.string(),
        type: z.string(),
        usedBytes: exactUint64('Bytes in use').nullable(),
        totalBytes: exactUint64('What an unprivileged user sees (reserved blocks excluded)').nullable(),
        totalBytesPrivileged: exactUint64('Reserved blocks included; null before qemu-ga 9.1').nullable(),
        disks: z.array(diskAddressSchema),
      }),
    ),
  })
  .meta({
    id: 'GuestFilesystems',
    example: {
      domain: EXAMPLE_DOMAIN,
      filesystems: [
        {
          name: 'vda1',
          mountpoint: '/',
          type: 'ext4',
          usedBytes: 1073741824,
          totalBytes: 10737418240,
          totalBytesPrivileged: null,
          disks: [EXAMPLE_ADDRESS],
        },
      ],
    },
  });

const disksSchema = z
  .object({
    domain: domainRefSchema,
    disks: z.array(
      z.object({
        name: z.string().describe('Device node (Linux) or device path (Windows)'),
        partition: z.boolean(),
        dependencies: z.array(z.string()).describe('Devices this one lies on (LVM, LUKS, partitions of a disk)'),
        address: diskAddressSchema.nullable(),
        alias: z.string().nullable().describe('Device-mapper name'),
        smart: z.record(z.string(), z.unknown()).nullable().describe("SMART data (NVMe), the agent's fields in camelCase"),
      }),
    ),
  })
  .meta({
    id: 'GuestDisks',
    example: {
      domain: EXAMPLE_DOMAIN,
      disks: [{ name: '/dev/vda', partition: false, dependencies: [], address: EXAMPLE_ADDRESS, alias: null, smart: null }],
    },
  });

/** GuestDiskStats members and the names they get here: ticks are milliseconds. */
const DISK_STAT_NAMES = {
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
} as const;
type DiskStatName = (typeof DISK_STAT_NAMES)[keyof typeof DISK_STAT_NAMES];
const diskCounter = () => exactUint64().nullable();

const diskStatsSchema = z
  .object({
    domain: domainRefSchema,
    disks: z.array(
      z.object({
        name: z.string(),
        major: z.number().int(),
        minor: z.number().int(),
        stats: z
          .object(
            Object.fromEntries(Object.values(DISK_STAT_NAMES).map((n) => [n, diskCounter()])) as Record<
              DiskStatName,
              ReturnType<typeof diskCounter>
            >,
          )
          .describe(
            'Counters since boot (/proc/diskstats); *Ms in milliseconds, sectors of 512 bytes; ' +
              'exact uint64 JSON integers (may exceed 2^53); null when the guest does not report one',
          ),
      }),
    ),
  })
  .meta({
    id: 'GuestDiskStats',
    example: {
      domain: EXAMPLE_DOMAIN,
      disks: [
        {
          name: 'vda',
          major: 254,
          minor: 0,
          stats: {
            readSectors: 2048,
            readIos: 100,
            readMerges: 3,
            readMs: 40,
            writeSectors: 512,
            writeIos: 20,
            writeMerges: 1,
            writeMs: 12,
            discardSectors: 0,
            discardIos: 0,
            discardMerges: 0,
            discardMs: 0,
            flushIos: 4,
            flushMs: 2,
            iosInProgress: 0,
            ioMs: 60,
            weightedIoMs: 54,
          },
        },
      ],
    },
  });

/** kebab-case keys to camelCase, all the way down (SMART data has dozens of fields and may grow). */
function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase()), camelKeys(v)]),
    );
  }
  return value;
}

export function guestStorageRoutes({ agent }: Gateway): DomainRoute[] {
  return [
    agentQuery(agent, {
      operationId: 'getFilesystems',
      path: '/filesystems',
      permission: 'read',
      tags: ['guest'],
      summary: "The guest's mounted filesystems, with used and total bytes",
      command: guestGetFsinfo,
      details: 'Network and virtual filesystems (tmpfs, proc, ...) are not listed by the agent.',
      response: filesystemsSchema,
      problems: [501],
      reshape: (r) => ({
        filesystems: r.map((f) => ({
          name: f.name,
          mountpoint: f.mountpoint,
          type: f.type,
          usedBytes: f['used-bytes'] ?? null,
          totalBytes: f['total-bytes'] ?? null,
          totalBytesPrivileged: f['total-bytes-privileged'] ?? null,
          disks: f.disk.map(normaliseAddress),
        })),
      }),
    }),

    agentQuery(agent, {
      operationId: 'getDisks',
      path: '/disks',
      permission: 'read',
      tags: ['guest'],
      summary: "The guest's disks and partitions",
      command: guestGetDisks,
      requires: 'qemu-ga 5.2+',
      response: disksSchema,
      problems: [501],
      reshape: (r) => ({
        disks: r.map((d) => ({
          name: d.name,
          partition: d.partition,
          dependencies: d.dependencies ?? [],
          address: d.address ? normaliseAddress(d.address) : null,
          alias: d.alias ?? null,
          smart: d.smart ? (camelKeys(d.smart) as Record<string, unknown>) : null,
        })),
      }),
    }),

    agentQuery(agent, {
      operationId: 'getDiskStats',
      path: '/disk-stats',
      permission: 'read',
      tags: ['guest'],
      summary: "I/O statistics of the guest's disks",
      command: guestGetDiskstats,
      requires: 'qemu-ga 7.1+, Linux guests',
      response: diskStatsSchema,
      problems: [501],
      reshape: (r) => ({
        disks: r.map((d) => ({
          name: d.name,
          major: d.major,
          minor: d.minor,
          stats: Object.fromEntries(
            Object.entries(DISK_STAT_NAMES).map(([k, n]) => [n, d.stats[k as keyof typeof DISK_STAT_NAMES] ?? null]),
          ) as Record<DiskStatName, ExactInteger | null>,
        })),
      }),
    }),
  ];
}
