// GET and PUT /domains/{domain}/time: the guest's clock, read or set (to a given time, from its hardware
// clock, or to the host's clock).
import { z } from 'zod';
import { readGuestTime, setGuestTime, type TimeSource } from '../../agent/guest/guest-settings.js';
import { checkTimeRange, isoToNs, timeBody } from '../../agent/guest/guest-time.js';
import { GatewayError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from '../schemas.js';

const timeValueSchema = z
  .object({
    iso: z.string().describe('ISO 8601, UTC, nine fraction digits'),
    ns: z
      .string()
      .regex(/^-?\d+$/)
      .describe('Nanoseconds since the epoch, as a decimal string (too large for an exact JSON number)'),
  })
  .meta({ id: 'GuestTimeValue' });

const EXAMPLE_TIME = { iso: '2026-11-28T00:07:14.961949000Z', ns: '1795824434961949000' };

const guestTimeSchema = z
  .object({ domain: domainRefSchema, time: timeValueSchema })
  .meta({ id: 'GuestTime', example: { domain: EXAMPLE_DOMAIN, time: EXAMPLE_TIME } });

const setTimeResultSchema = z
  .object({
    domain: domainRefSchema,
    source: z.enum(['given', 'host', 'hardware-clock']),
    requested: timeValueSchema.nullable().describe('The time sent to the guest; null when it read its hardware clock'),
    time: timeValueSchema.describe("The guest's clock read back afterwards"),
  })
  .meta({ id: 'GuestTimeSet', example: { domain: EXAMPLE_DOMAIN, source: 'host', requested: EXAMPLE_TIME, time: EXAMPLE_TIME } });

const nsInput = z.union([
  // Not z.int(): that means a safe integer, and nanoseconds since 1970 are far above 2^53.
  z
    .number()
    .refine(Number.isInteger, 'must be a whole number')
    .describe(
      'A JSON number: exact up to 2^53, larger values arrive rounded to the nearest double (256 ns today); send a string for exact values',
    ),
  z.string().regex(/^-?\d{1,20}$/, 'must be a decimal integer'),
]);

const setTimeBody = z
  .union([
    z.strictObject({
      time: z.union([
        z.string().describe('ISO 8601 with a zone (Z or ±hh:mm), up to nine fraction digits'),
        z.strictObject({ ns: nsInput }),
      ]),
    }),
    z.strictObject({ source: z.enum(['host', 'hardware-clock']) }),
  ])
  .describe(
    '{"time": ISO 8601} or {"time": {"ns": nanoseconds since the epoch}}: set it; {"source": "host"}: ' +
      'set it to the host\'s clock; {"source": "hardware-clock"}: set it from the guest\'s RTC',
  )
  .meta({ id: 'GuestTimeSetRequest', example: { time: '2026-11-28T00:07:14.5Z' } });

function toSource(body: z.infer<typeof setTimeBody>): TimeSource {
  if ('source' in body) return body.source === 'host' ? { kind: 'host' } : { kind: 'hardware-clock' };
  let ns: bigint | null;
  if (typeof body.time === 'string') {
    ns = isoToNs(body.time);
    if (ns === null)
      throw new GatewayError('invalid_request', `time is not an ISO 8601 date-time with a zone: ${JSON.stringify(body.time)}`);
  } else {
    ns = BigInt(body.time.ns);
  }
  checkTimeRange(ns);
  return { kind: 'given', ns };
}

export function guestTimeRoutes({ agent }: Gateway): DomainRoute[] {
  return [
    domainRoute({
      operationId: 'getTime',
      method: 'GET',
      path: '/time',
      permission: 'read',
      tags: ['guest-settings'],
      summary: "The guest's clock",
      description:
        'Agent command: guest-get-time. The nanoseconds exactly as the agent sent them (a JSON number far above 2^53, ' +
        'read without rounding); Linux agents send whole microseconds.',
      response: { 200: { description: "The guest's clock", schema: guestTimeSchema } },
      problems: [501],
      answer: async ({ domain, agentOpts }) => ({ time: timeBody(await readGuestTime(agent, domain, agentOpts)) }),
    }),

    domainRoute({
      operationId: 'setTime',
      method: 'PUT',
      path: '/time',
      permission: 'power',
      tags: ['guest-settings'],
      summary: "Sets the guest's clock",
      description:
        'Agent commands: guest-set-time (with a time: sets the system clock, then the RTC from it; without: ' +
        'sets the system clock from the RTC), then guest-get-time. A time before 1970, after 2262-04-11, ' +
        'or one the guest kernel refuses (e.g. before the guest booted): 400.',
      body: setTimeBody,
      response: { 200: { description: 'The clock set', schema: setTimeResultSchema } },
      problems: [501],
      check: (request) => toSource(request.body),
      answer: async (request, _reply, source) => {
        const requested = await setGuestTime(agent, request.domain, source, request.agentOpts);
        request.log.info({ source: source.kind }, 'guest clock set');
        const now = await readGuestTime(agent, request.domain, request.agentOpts);
        return { source: source.kind, requested: requested === null ? null : timeBody(requested), time: timeBody(now) };
      },
    }),
  ];
}
