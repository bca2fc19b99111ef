// The guest system (qga/qapi-schema.json): its clock and time zone, host name, OS, users, logical processors and
// memory blocks, CPU statistics and load, devices, and power (guest-shutdown, guest-suspend-*, which never reply on
// success: src/agent/power/). Replies are loose objects: newer agents add fields.
import { z } from 'zod';
import { agentInt64, agentUint64 } from './reply-integers.js';
import { command, known, noArgs } from './define.js';

/**
 * Nanoseconds since the epoch (int64), a JSON number far above 2^53 today: read and sent as exact bigints
 * (transports/agent-json.ts). Linux agents send whole microseconds (g_get_real_time() * 1000).
 */
export const guestGetTime = command('guest-get-time', 'quick', noArgs, agentInt64(), { rawScope: 'read' });

/**
 * With time: sets the system clock, then the RTC from it (hwclock -w). Without: sets the system clock from
 * the RTC (hwclock -s). 'slow': it runs hwclock in the guest.
 */
export const guestSetTime = command(
  'guest-set-time',
  'slow',
  z.union([z.undefined(), z.strictObject({ time: z.bigint() })]),
  z.looseObject({}),
  { rawScope: 'power' },
);

const logicalProcessor = z.looseObject({ 'logical-id': z.number().int(), online: z.boolean(), 'can-offline': z.boolean().optional() });
export const guestGetVcpus = command('guest-get-vcpus', 'query', noArgs, z.array(logicalProcessor), { rawScope: 'read' });

/** Applies the list in order and stops at the first failure; answers how many were applied. */
export const guestSetVcpus = command(
  'guest-set-vcpus',
  'slow',
  z.strictObject({ vcpus: z.array(z.strictObject({ 'logical-id': z.number().int().min(0), online: z.boolean() })).min(1) }),
  z.number().int().min(0),
  { rawScope: 'power' },
);

const memoryBlock = z.looseObject({ 'phys-index': z.number().int(), online: z.boolean(), 'can-offline': z.boolean().optional() });
export const guestGetMemoryBlocks = command('guest-get-memory-blocks', 'query', noArgs, z.array(memoryBlock), { rawScope: 'read' });

export const MEMORY_BLOCK_RESULTS = ['success', 'not-found', 'operation-not-supported', 'operation-failed'] as const;

/** One result per block asked for, in order; error-code is the errno of a failure. */
export const guestSetMemoryBlocks = command(
  'guest-set-memory-blocks',
  'slow',
  z.strictObject({ 'mem-blks': z.array(z.strictObject({ 'phys-index': z.number().int().min(0), online: z.boolean() })).min(1) }),
  z.array(z.looseObject({ 'phys-index': z.number().int(), response: z.string(), 'error-code': z.number().int().optional() })),
  { rawScope: 'power' },
);

// size: uint64 bytes, exact. phys-index above stays a safe integer: block numbers are ids the API sorts and takes back.
export const guestGetMemoryBlockInfo = command('guest-get-memory-block-info', 'query', noArgs, z.looseObject({ size: agentUint64() }), {
  rawScope: 'read',
});

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
  { rawScope: 'read' },
);

export const guestGetHostName = command('guest-get-host-name', 'query', noArgs, z.looseObject({ 'host-name': z.string() }), {
  rawScope: 'read',
});

export const guestGetTimezone = command(
  'guest-get-timezone',
  'query',
  noArgs,
  z.looseObject({ zone: z.string().optional(), offset: z.number().int() }),
  { rawScope: 'read' },
);

export const guestGetUsers = command(
  'guest-get-users',
  'query',
  noArgs,
  // login-time: fractional seconds since the epoch; domain: the logon domain (Windows only).
  z.array(z.looseObject({ user: z.string(), 'login-time': z.number(), domain: z.string().optional() })),
  { rawScope: 'read' },
);

const optionalCounter = () => agentUint64().optional();

/** GuestLinuxCpuStats (type 'linux'), uint64 milliseconds; user, nice, system and idle are always there. */
export const CPU_STAT_KEYS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal', 'guest', 'guestnice'] as const;

export const guestGetCpustatsReply = z.array(
  z.looseObject({
    type: z.string(),
    cpu: z.number().int().optional(),
    ...(Object.fromEntries(CPU_STAT_KEYS.map((k) => [k, optionalCounter()])) as Record<
      (typeof CPU_STAT_KEYS)[number],
      ReturnType<typeof optionalCounter>
    >),
  }),
);
export const guestGetCpustats = command('guest-get-cpustats', 'query', noArgs, guestGetCpustatsReply, { rawScope: 'read' });

/** Since qemu-ga 10.0 (Linux with getloadavg; Windows emulates it since 10.1). */
// qga/qapi-schema.json GuestLoadAverage (10.0): load1m, load5m, load15m (doubles); as qemu-ga 10.0.13 answers here.
export const guestGetLoad = command(
  'guest-get-load',
  'query',
  noArgs,
  z.looseObject({ load1m: z.number(), load5m: z.number(), load15m: z.number() }),
  { rawScope: 'read' },
);

/** GuestDeviceInfo (Windows guests): not typed here, sent only raw. */
export const guestGetDevices = known('guest-get-devices', { rawScope: 'read' });

/** guest-shutdown: mode powerdown (default), halt or reboot; no reply on success. */
export const guestShutdown = command(
  'guest-shutdown',
  'quick',
  z.object({ mode: z.enum(['powerdown', 'halt', 'reboot']).optional() }),
  z.looseObject({}),
  { rawScope: 'power' },
);

/** No reply on success either; the guest's kernel may not offer every mode (its error is a 501 then). */
export const guestSuspendDisk = command('guest-suspend-disk', 'quick', noArgs, z.looseObject({}), { rawScope: 'power' });
export const guestSuspendRam = command('guest-suspend-ram', 'quick', noArgs, z.looseObject({}), { rawScope: 'power' });
export const guestSuspendHybrid = command('guest-suspend-hybrid', 'quick', noArgs, z.looseObject({}), { rawScope: 'power' });
