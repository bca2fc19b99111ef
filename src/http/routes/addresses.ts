// GET /addresses: every running domain's name, UUID and guest IP addresses in one call, for fleet callers.
import { weakEtagOfText, withEtags } from '../conditional-get.js';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { mayTouch, mayTouchProject } from '../../auth/identity.js';
import { z } from 'zod';
import type { AddressEntry, AddressResult } from '../../agent/guest/addresses.js';
import { ERROR_STATUS, type GatewayError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import { interfaceAddresses } from '../../agent/guest/interface-addresses.js';
import { novaFilter, novaFilterQuery } from '../nova-filter.js';
import { listParam, novaSchema } from '../schemas.js';

const MAX_FILTER = 1000;

export const interfaceSchema = z.object({
  name: z.string(),
  mac: z.string().nullable(),
  addresses: z.array(z.object({ family: z.enum(['ipv4', 'ipv6']), address: z.string(), prefix: z.number().int() })),
});

const errorSchema = z.object({ code: z.string(), status: z.number().int(), detail: z.string() });

const entrySchema = z.object({
  host: z.string().nullable().describe('The libvirt host the domain is on; null for a filter entry that names no domain'),
  name: z.string(),
  uuid: z.guid().nullable().describe('null for a filter entry that names no domain'),
  ok: z.boolean(),
  interfaces: z.array(interfaceSchema).optional().describe('ok only: interfaces other than loopback, with their addresses'),
  error: errorSchema.optional().describe('not ok only: the problem code, HTTP status and detail a per-domain request would have answered'),
  fetchedAt: z.iso.datetime().describe('When the gateway learnt this (older than the request when cached)'),
  cached: z.boolean(),
  nova: novaSchema.optional(),
});

const addressesSchema = z
  .object({
    domains: z.array(entrySchema),
    unavailableHosts: z
      .array(z.object({ host: z.string(), error: errorSchema }))
      .describe('Hosts that could not be listed (several hosts configured): their domains are missing from this answer'),
    timeoutMs: z.number().int().describe('The one deadline the fan-out ran under'),
    elapsedMs: z.number(),
  })
  .meta({
    id: 'FleetAddresses',
    example: {
      domains: [
        {
          host: 'local',
          name: 'guest1',
          uuid: '8f1c3a52-1b5e-4c1a-9d7e-0a0000000001',
          ok: true,
          interfaces: [{ name: 'eth0', mac: '52:54:00:a0:00:01', addresses: [{ family: 'ipv4', address: '10.0.2.21', prefix: 24 }] }],
          fetchedAt: '2026-11-28T00:00:00.000Z',
          cached: false,
        },
        {
          host: 'local',
          name: 'guest-noagent',
          uuid: '8f1c3a52-1b5e-4c1a-9d7e-0a0000000003',
          ok: false,
          error: { code: 'agent_not_configured', status: 503, detail: 'argument unsupported: QEMU guest agent is not configured' },
          fetchedAt: '2026-11-28T00:00:00.000Z',
          cached: true,
        },
      ],
      unavailableHosts: [],
      timeoutMs: 5000,
      elapsedMs: 12.5,
    },
  });

/** ?domain=a&domain=b and ?domain=a,b both work. */
const domainFilter = listParam
  .superRefine((tokens, ctx) => {
    if (tokens && tokens.length > MAX_FILTER) ctx.addIssue({ code: 'custom', message: `at most ${MAX_FILTER} domains` });
  })
  .describe(
    'Only these domains, by name or UUID (host:name with several hosts): repeat the parameter or separate with commas. ' +
      'A filter also lists stopped and unknown domains, with their error',
  );

type EntryBody = z.infer<typeof entrySchema>;
type ResultBody = Pick<EntryBody, 'ok' | 'interfaces' | 'error'>;

/**
 * A result's body and its JSON, made once per result: a cached result is the same object from request to request,
 * and converting its interfaces and hashing them again for every poll was most of a cached answer's own CPU.
 */
const resultBodies = new WeakMap<AddressResult, { body: ResultBody; json: string }>();

function resultBody(result: AddressResult): { body: ResultBody; json: string } {
  let made = resultBodies.get(result);
  if (!made) {
    const body: ResultBody = result.ok
      ? { ok: true, interfaces: interfaceAddresses(result.interfaces) }
      : { ok: false, error: errorBody(result.error) };
    made = { body, json: JSON.stringify(body) };
    resultBodies.set(result, made);
  }
  return made;
}

function toBody(e: AddressEntry): EntryBody {
  const result = resultBody(e.result).body;
  const body: EntryBody = {
    host: e.host,
    name: e.name,
    uuid: e.uuid,
    ok: result.ok,
    fetchedAt: e.fetchedAt.toISOString(),
    cached: e.cached,
  };
  if (result.interfaces) body.interfaces = result.interfaces;
  if (result.error) body.error = result.error;
  if (e.nova) body.nova = e.nova;
  return body;
}

/** An answer's entries, their bodies and its ETag. */
interface Answer {
  entries: readonly AddressEntry[];
  domains: EntryBody[];
  etag: string;
}

/**
 * The last answer given with every host reachable, kept for the next poll: the address book hands out the same entry
 * objects while their cached results, names and Nova metadata stay (addresses.ts), so equal entries make the same
 * bodies and ETag. Any other entry (a new result, a domain not running: a new object each time) makes them anew.
 */
function answerOf(entries: readonly AddressEntry[], last: Answer | null): Answer {
  if (last && last.entries.length === entries.length && entries.every((e, i) => e === last.entries[i])) return last;
  return { entries, domains: entries.map(toBody), etag: addressesEtag(entries, []) };
}

/** The JSON of a domain's Nova metadata, made once per metadata object (kept per domain until its definition changes). */
const novaJson = new WeakMap<object, string>();

function novaText(nova: AddressEntry['nova']): string {
  if (!nova) return 'null';
  let text = novaJson.get(nova);
  if (text === undefined) {
    text = JSON.stringify(nova);
    novaJson.set(nova, text);
  }
  return text;
}

/**
 * Weak: the same domains with the same addresses (or errors) are the same answer, however long they took or whether
 * they were cached. One line of JSON per entry (its ids, its Nova metadata, its result), then the unavailable hosts.
 */
function addressesEtag(entries: readonly AddressEntry[], unavailableHosts: unknown): string {
  const lines = entries.map((e) => `${JSON.stringify([e.host, e.name, e.uuid])}${novaText(e.nova)}${resultBody(e.result).json}`);
  lines.push(JSON.stringify(unavailableHosts));
  return weakEtagOfText(lines.join('\n'));
}

const errorBody = (err: GatewayError) => ({ code: err.code, status: ERROR_STATUS[err.code], detail: err.message });

export function addressRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  const book = gateway.addresses;
  return async (app) => {
    let lastAnswer: Answer | null = null;
    await withEtags(app);
    app.get(
      '/addresses',
      {
        config: { permission: 'read', etag: true, responseDescriptions: { 200: 'Every domain asked, with its addresses or its error' } },
        schema: {
          operationId: 'listAddresses',
          tags: ['network'],
          summary: "Every running domain's guest IP addresses, in one call",
          description:
            'Agent command: guest-network-get-interfaces, sent to every running domain under one deadline ' +
            '(?timeoutMs=, default addresses.timeoutMs), at most addresses.concurrency domains at once. ' +
            'Each domain is ok with its non-loopback interfaces, or carries its error ' +
            '(agent_not_configured for a domain without an agent channel, deadline_exceeded, ...). ' +
            'Answers are cached for addresses.cacheTtlMs and dropped when libvirt reports a lifecycle or agent-lifecycle event for the domain. ' +
            'Domains that are not running are skipped unless the filter names them. ' +
            'A domain that OpenStack Nova runs carries `nova`; ?project= and ?novaName= keep only such domains (and ask no other).',
          querystring: z.object({
            domain: domainFilter,
            ...novaFilterQuery,
            timeoutMs: z.coerce
              .number()
              .int()
              .min(1)
              .max(gateway.config.agent.maxTimeoutMs)
              .optional()
              .describe('The deadline of the whole fan-out, in milliseconds'),
          }),
          response: { 200: addressesSchema },
        },
      },
      async (request, reply) => {
        const started = performance.now();
        const timeoutMs = request.query.timeoutMs ?? book.defaultTimeoutMs;
        const identity = request.identity;
        const { entries, failedHosts } = await book.collect(
          request.query.domain,
          timeoutMs,
          () => request.clientGone,
          (dom) => !identity || mayTouch(identity, dom),
          novaFilter(request.query),
          identity?.novaProject === undefined ? null : (nova) => mayTouchProject(identity, nova?.project.id ?? null),
        );
        const failed = entries.filter((e) => !e.result.ok).length;
        request.log.debug({ domains: entries.length, failed, failedHosts: failedHosts.length }, 'addresses collected');
        const elapsedMs = () => Math.round((performance.now() - started) * 100) / 100;
        if (failedHosts.length === 0) {
          const answer = answerOf(entries, lastAnswer);
          lastAnswer = answer;
          reply.header('etag', answer.etag);
          return { domains: answer.domains, unavailableHosts: [], timeoutMs, elapsedMs: elapsedMs() };
        }
        const unavailableHosts = failedHosts.map((f) => ({ host: f.host, error: errorBody(f.error) }));
        reply.header('etag', addressesEtag(entries, unavailableHosts));
        return { domains: entries.map(toBody), unavailableHosts, timeoutMs, elapsedMs: elapsedMs() };
      },
    );
  };
}
