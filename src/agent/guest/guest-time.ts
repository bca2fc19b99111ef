// The guest clock in nanoseconds since the epoch, and ISO 8601 with up to nine fraction digits. Nanoseconds
// are bigints here: today's values (~1.8e18) are far past the integers a JavaScript number holds exactly.
import { GatewayError } from '../../errors.js';
import type { ExactInteger } from '../transports/agent-json.js';

const NS_PER_SECOND = 1_000_000_000n;

/**
 * The latest time the gateway sends: the largest double below 2^63 (2262-04-11T23:47:16.854775Z), a hair under
 * the agent's int64 limit. The value travels exactly (agent-json.ts); the bound stays where clients know it.
 */
export const MAX_TIME_NS = 9_223_372_036_854_774_784n;
/** Linux refuses (EINVAL) a wall clock before the time the guest booted; 1970 is the floor that can be checked here. */
export const MIN_TIME_NS = 0n;

/** 2026-11-28T00:07:08.123456789Z: always nine fraction digits, always UTC. */
export function nsToIso(ns: bigint): string {
  let seconds = ns / NS_PER_SECOND;
  let fraction = ns % NS_PER_SECOND;
  if (fraction < 0n) {
    fraction += NS_PER_SECOND;
    seconds -= 1n;
  }
  const whole = new Date(Number(seconds) * 1000).toISOString(); // ...T00:07:08.000Z
  return `${whole.slice(0, -5)}.${fraction.toString().padStart(9, '0')}Z`;
}

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;

/** Parses an ISO 8601 date-time with a zone (Z or ±hh:mm); null when it is not one or names no real instant. */
export function isoToNs(text: string): bigint | null {
  const m = ISO_RE.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  const ms = d.getTime();
  // Date.UTC rolls 2026-02-30 over into March: a round trip catches it (and hour 24, minute 60, ...).
  if (
    d.getUTCFullYear() !== year ||
    d.getUTCMonth() !== month - 1 ||
    d.getUTCDate() !== day ||
    d.getUTCHours() !== hour ||
    d.getUTCMinutes() !== minute ||
    d.getUTCSeconds() !== second
  ) {
    return null;
  }
  const zone = m[8]!.toUpperCase();
  let offsetSeconds = 0;
  if (zone !== 'Z') {
    const [h, min] = zone.slice(1).split(':').map(Number) as [number, number];
    if (h > 23 || min > 59) return null;
    offsetSeconds = (h * 3600 + min * 60) * (zone.startsWith('-') ? -1 : 1);
  }
  const fraction = BigInt((m[7] ?? '').padEnd(9, '0') || '0');
  return (BigInt(ms / 1000) - BigInt(offsetSeconds)) * NS_PER_SECOND + fraction;
}

/** Refuses (400) a time the agent or the guest kernel cannot take. */
export function checkTimeRange(ns: bigint): void {
  if (ns < MIN_TIME_NS || ns > MAX_TIME_NS) {
    throw new GatewayError(
      'invalid_request',
      `time out of range: ${ns} ns; it must lie between ${nsToIso(MIN_TIME_NS)} and ${nsToIso(MAX_TIME_NS)}`,
    );
  }
}

/** What the agent's reply says, exactly: parseAgentJson read the JSON number as a bigint, never as a double. */
export function agentTimeToNs(value: ExactInteger): bigint {
  return BigInt(value);
}

/** The host's clock now, in nanoseconds (millisecond resolution). */
export function hostNowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function timeBody(ns: bigint): { iso: string; ns: string } {
  return { iso: nsToIso(ns), ns: ns.toString() };
}
