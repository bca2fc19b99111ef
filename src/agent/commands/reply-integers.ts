// Zod pieces for the integers of agent replies, parsed by parseAgentJson (../transports/agent-json.ts): a safe integer is a
// number, a larger one a bigint. Which one a member takes follows qga/qapi-schema.json and what real agents send:
// - agentUint64(): uint64 counters and sizes (byte and packet counters, sectors, milliseconds, filesystem bytes):
//   any size, kept exact; the HTTP answers write them as exact JSON integers (src/http/exact-integer.ts).
// - agentInt64(): int members that real agents do send beyond 2^53 (a directory's seek position, 2^63 - 1).
// - z.number().int() (safe integers only) for handles, pids, counts, indexes: a bigint there is refused as a bad
//   reply (502) rather than rounded.
import { z } from 'zod';
import type { ExactInteger } from '../transports/agent-json.js';

/** An integer of any size, as parseAgentJson gives it. */
export const agentInt64 = (): z.ZodType<ExactInteger> => z.union([z.number().int(), z.bigint()]);

/** A non-negative integer of any size, as parseAgentJson gives it. */
export const agentUint64 = (): z.ZodType<ExactInteger> => z.union([z.number().int().min(0), z.bigint().min(0n)]);

const TWO_32 = 2n ** 32n;
const TWO_64 = 2n ** 64n;

/**
 * The kernel's unsigned 32-bit value behind a route member (flags, metric, refcnt, use, mtu, window, irtt are
 * u32 in the kernel). qemu-ga 9.1-10.x reads them from /proc/net/{route,ipv6_route} into a C int: a value with
 * the top bit set arrives negative (an IPv6 metric of 0xffffffff as -1), and IPv6 flags, copied from that int
 * into a uint64, sign-extended (0x80200001 as 18446744071564165121). Both are turned back into the u32; any
 * other value is passed on as it came.
 */
export function kernelU32(value: ExactInteger): ExactInteger {
  const v = BigInt(value);
  if (v >= -(TWO_32 / 2n) && v < 0n) return Number(v + TWO_32);
  if (v >= TWO_64 - TWO_32 / 2n && v < TWO_64) return Number(v - TWO_64 + TWO_32);
  return value;
}
