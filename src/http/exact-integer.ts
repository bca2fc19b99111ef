// Integers of the HTTP answers that come from the agent's 64-bit members (byte counters, filesystem sizes,
// milliseconds): written as exact JSON integers, however large. Below 2^53 nothing changes for any client; above
// it the digits are still exact, as qemu-ga and libvirt write them, for clients that read 64-bit integers (Go,
// Python, Rust, Java; JavaScript with a lossless parser). The value is a number, or a bigint past 2^53, and the
// serializer (serializer.ts) writes both as plain digits. Fields that are always that large (nanoseconds since
// the epoch) are decimal strings instead (GuestTimeValue.ns).
import { z } from 'zod';
import { isExactInteger, type ExactInteger } from '../agent/transports/agent-json.js';

/** A uint64 of the agent's, exact in the answer. OpenAPI: a non-negative integer (no format names uint64: the description does). */
export function exactUint64(description?: string): z.ZodType<ExactInteger> {
  const check = (v: unknown) => isExactInteger(v) && v >= 0;
  // z.unknown() underneath: zod cannot describe a bigint in JSON Schema, so the meta says what it is.
  const schema = z.unknown().refine(check, 'expected a non-negative integer') as unknown as z.ZodType<ExactInteger>;
  return schema.meta({
    type: 'integer',
    minimum: 0,
    ...(description ? { description: `${description} (exact uint64: may exceed 2^53)` } : {}),
  });
}

/** An int64 of the agent's (or a value passed on as the agent sent it), exact in the answer. OpenAPI: integer, format int64. */
export function exactInt64(description?: string): z.ZodType<ExactInteger> {
  const schema = z.unknown().refine(isExactInteger, 'expected an integer') as unknown as z.ZodType<ExactInteger>;
  return schema.meta({ type: 'integer', format: 'int64', ...(description ? { description } : {}) });
}
