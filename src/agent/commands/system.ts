// Typed agent commands that read and change the guest's settings (qga/qapi-schema.json): its clock,
// its logical processors and its memory blocks.
import { z } from 'zod';
import { command, noArgs } from './define.js';
import { agentInt64, agentUint64 } from '../core/reply-integers.js';

/**
 * Nanoseconds since the epoch (int64), a JSON number far above 2^53 today: read and sent as exact bigints
 * (agent-json.ts). Linux agents send whole microseconds (g_get_real_time() * 1000).
 */
export const guestGetTime = command('guest-get-time', 'quick', noArgs, agentInt64());

/**
 * With time: sets the system clock, then the RTC from it (hwclock -w). Without: sets the system clock from
 * the RTC (hwclock -s). 'slow': it runs hwclock in the guest.
 */
export const guestSetTime = command('guest-set-time', 'slow', z.union([z.undefined(), z.strictObject({ time: z.bigint() })]), z.looseObject({}));

const logicalProcessor = z.looseObject({ 'logical-id': z.number().int(), online: z.boolean(), 'can-offline': z.boolean().optional() });
export const guestGetVcpus = command('guest-get-vcpus', 'query', noArgs, z.array(logicalProcessor));

/** Applies the list in order and stops at the first failure; answers how many were applied. */
export const guestSetVcpus = command(
  'guest-set-vcpus',
  'slow',
  z.strictObject({ vcpus: z.array(z.strictObject({ 'logical-id': z.number().int().min(0), online: z.boolean() })).min(1) }),
  z.number().int().min(0),
);

const memoryBlock = z.looseObject({ 'phys-index': z.number().int(), online: z.boolean(), 'can-offline': z.boolean().optional() });
export const guestGetMemoryBlocks = command('guest-get-memory-blocks', 'query', noArgs, z.array(memoryBlock));

export const MEMORY_BLOCK_RESULTS = ['success', 'not-found', 'operation-not-supported', 'operation-failed'] as const;

/** One result per block asked for, in order; error-code is the errno of a failure. */
export const guestSetMemoryBlocks = command(
  'guest-set-memory-blocks',
  'slow',
  z.strictObject({ 'mem-blks': z.array(z.strictObject({ 'phys-index': z.number().int().min(0), online: z.boolean() })).min(1) }),
  z.array(z.looseObject({ 'phys-index': z.number().int(), response: z.string(), 'error-code': z.number().int().optional() })),
);

// size: uint64 bytes, exact. phys-index above stays a safe integer: block numbers are ids the API sorts and takes back.
export const guestGetMemoryBlockInfo = command('guest-get-memory-block-info', 'query', noArgs, z.looseObject({ size: agentUint64() }));
