// The guest clock's conversions: nanoseconds as bigints, ISO 8601 with nine fraction digits, the range.
import { describe, expect, it } from 'vitest';
import { checkTimeRange, isoToNs, MAX_TIME_NS, nsToIso } from '../../src/agent/guest/guest-time.js';
import { GatewayError } from '../../src/errors.js';

describe('guest time conversions', () => {
  it('formats nanoseconds as ISO 8601 with nine fraction digits', () => {
    expect(nsToIso(1_795_824_434_961_949_123n)).toBe('2026-11-28T00:07:14.961949123Z');
    expect(nsToIso(0n)).toBe('1970-01-01T00:00:00.000000000Z');
    expect(nsToIso(MAX_TIME_NS)).toBe('2262-04-11T23:47:16.854774784Z');
  });

  it('parses ISO 8601 with a zone, keeping every nanosecond', () => {
    expect(isoToNs('2026-11-28T00:07:14.961949123Z')).toBe(1_795_824_434_961_949_123n);
    expect(isoToNs('2026-11-28T00:07:14Z')).toBe(1_795_824_434_000_000_000n);
    expect(isoToNs('2026-11-28T01:07:14.5+01:00')).toBe(1_795_824_434_500_000_000n);
    expect(isoToNs('2026-11-27T19:07:14-05:00')).toBe(1_795_824_434_000_000_000n);
    expect(isoToNs('1970-01-01t00:00:00z')).toBe(0n);
    // Early years parse (and are then refused by the range check, not as malformed).
    expect(nsToIso(isoToNs('0050-01-01T00:00:00.5Z')!)).toBe('0050-01-01T00:00:00.500000000Z');
  });

  it.each([
    '2026-11-28T00:07:14',
    '2026-02-30T00:00:00Z',
    '2026-11-28T24:00:00Z',
    '2026-11-28 00:07:14Z',
    'yesterday',
    '2026-11-28T00:07:14.1234567890Z',
    '2026-11-28T00:00:00+25:00',
  ])('refuses %s', (text) => {
    expect(isoToNs(text)).toBeNull();
  });

  it('refuses times before 1970 and after the int64 limit with a 400', () => {
    for (const ns of [-1n, MAX_TIME_NS + 1n, 10n ** 19n]) {
      try {
        checkTimeRange(ns);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(GatewayError);
        expect((err as GatewayError).status).toBe(400);
      }
    }
    expect(() => checkTimeRange(0n)).not.toThrow();
    expect(() => checkTimeRange(MAX_TIME_NS)).not.toThrow();
  });
});
