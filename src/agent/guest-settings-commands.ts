// Typed agent commands that read and change the guest's settings (qga/qapi-schema.json): its clock,
// its logical processors and its memory blocks.
import { z } from 'zod';
import { command, noArgs } from './commands.js';

/**
 * Nanoseconds since the epoch, a JSON number: above 2^53 the last bits are lost (a few hundred ns today).
 * Not z.int(): zod's integers are safe integers, and today's nanoseconds are not.
 */
const wholeNumber = () => z.number().refine(Number.isInteger, 'expected a whole number');
export const guestGetTime = command('guest-get-time', 'quick', noArgs, wholeNumber());

/**
 * With time: sets the system clock, then the RTC from it (hwclock -w). Without: sets the system clock from
 * the RTC (hwclock -s). 'slow': it runs hwclock in the guest.
 */
export const guestSetTime = command('guest-set-time', 'slow', z.union([z.undefined(), z.strictObject({ time: wholeNumber() })]), z.looseObject({}));

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

export const guestGetMemoryBlockInfo = command('guest-get-memory-block-info', 'query', noArgs, z.looseObject({ size: z.number().int() }));
