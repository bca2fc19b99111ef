// The guest's file systems and disks (qga/qapi-schema.json): freeze, thaw and trim (src/agent/freeze/), and the
// read-only facts: mounted file systems, disks and their I/O statistics. Replies are loose objects: newer agents
// add fields (total-bytes-privileged, smart, ...).
import { z } from 'zod';
import { agentUint64 } from './reply-integers.js';
import { command, noArgs } from './define.js';

const FREEZE_LEFT_IN_PLACE = "a freeze left in place hangs the guest's writes; use the freeze resource, which thaws on a deadline";

// qga/qapi-schema.json: GuestFsfreezeStatus is 'thawed' | 'frozen'; freeze and thaw answer a count.
export const guestFsfreezeStatus = command('guest-fsfreeze-status', 'quick', noArgs, z.string(), {
  allowedWhileFrozen: true,
  rawScope: 'read',
});
export const guestFsfreezeFreeze = command('guest-fsfreeze-freeze', 'slow', noArgs, z.number().int(), {
  rawRefused: FREEZE_LEFT_IN_PLACE,
  rawScope: 'freeze',
});
export const guestFsfreezeFreezeList = command(
  'guest-fsfreeze-freeze-list',
  'slow',
  z.object({ mountpoints: z.array(z.string()).optional() }),
  z.number().int(),
  { rawRefused: FREEZE_LEFT_IN_PLACE, rawScope: 'freeze' },
);
export const guestFsfreezeThaw = command('guest-fsfreeze-thaw', 'slow', noArgs, z.number().int(), {
  allowedWhileFrozen: true,
  rawScope: 'freeze',
});
export const guestFstrim = command(
  'guest-fstrim',
  'slow',
  z.object({ minimum: z.number().int().min(0).optional() }).optional(),
  z.looseObject({
    paths: z.array(
      // trimmed and minimum: int64 bytes, exact (a large file system's trimmed bytes are not bounded by 2^53).
      z.looseObject({
        path: z.string(),
        trimmed: agentUint64().optional(),
        minimum: agentUint64().optional(),
        error: z.string().optional(),
      }),
    ),
  }),
  { rawScope: 'freeze' },
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
export const guestGetFsinfo = command('guest-get-fsinfo', 'query', noArgs, guestGetFsinfoReply, { rawScope: 'read' });

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
export const guestGetDisks = command('guest-get-disks', 'query', noArgs, guestGetDisksReply, { rawScope: 'read' });

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
    stats: z.looseObject(
      Object.fromEntries(DISK_STAT_KEYS.map((k) => [k, optionalCounter()])) as Record<
        (typeof DISK_STAT_KEYS)[number],
        ReturnType<typeof optionalCounter>
      >,
    ),
  }),
);
export const guestGetDiskstats = command('guest-get-diskstats', 'query', noArgs, guestGetDiskstatsReply, { rawScope: 'read' });
