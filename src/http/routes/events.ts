// GET /events: what happens to domains, their agents and the libvirt hosts, as Server-Sent Events (src/events has
// the events; sse-stream.ts frames one response). The filter and the identity's domain patterns decide what each
// stream sees, for live and replayed events alike.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FastifyBaseLogger } from 'fastify';
import { z } from 'zod';
import { compileDomainPattern } from '../../auth/domain-patterns.js';
import { mayTouch, mayTouchProject, type Identity } from '../../auth/identity.js';
import { domainPatternProblem } from '../../config/identities.js';
import type { StreamFilter } from '../../events/filter.js';
import type { OpenStream } from '../../events/hub.js';
import type { PublishedEvent } from '../../events/bus.js';
import { EVENT_TYPES, type EventType } from '../../events/types.js';
import type { Gateway } from '../../gateway.js';
import { problemResponses } from '../problem.js';
import { listParam } from '../schemas.js';
import { SseStream } from '../sse-stream.js';

const MAX_FILTER = 1000;
/** EventSource's reconnection delay. */
const RETRY_MS = 2000;
/** How long an ended stream (overflow, shutdown) may take to flush before its socket is destroyed. */
const GRACE_MS = 2000;

const querystring = z.object({
  domain: listParam
    .superRefine((tokens, ctx) => {
      if (!tokens) return;
      if (tokens.length > MAX_FILTER) ctx.addIssue({ code: 'custom', message: `at most ${MAX_FILTER} domains` });
      for (const t of tokens) {
        const problem = t.length > 1024 ? 'longer than 1024 characters' : domainPatternProblem(t);
        if (problem) ctx.addIssue({ code: 'custom', message: `'${t.slice(0, 64)}': ${problem}` });
      }
    })
    .describe(
      "Only events of these domains: names, UUIDs and globs, as identities' domain patterns (web*, uuid:8f1c3a52-*, host:name): " +
        'repeat the parameter or separate with commas. A stream with this filter gets no host events',
    ),
  types: listParam
    .superRefine((tokens, ctx) => {
      for (const t of tokens ?? [])
        if (!(EVENT_TYPES as readonly string[]).includes(t))
          ctx.addIssue({ code: 'custom', message: `'${t.slice(0, 64)}' is not one of ${EVENT_TYPES.join(', ')}` });
    })
    .describe(`Only these event types: ${EVENT_TYPES.join(', ')} (comma-separated or repeated); reset, overflow and closing always come`),
});

const headers = z.looseObject({
  'last-event-id': z
    .string()
    .max(128)
    .optional()
    .describe(
      'The id of the last event received (EventSource sends it when it reconnects): the events after it are sent first, ' +
        'or a reset event when they are no longer kept',
    ),
});

const EVENT_FORMAT =
  'A stream of Server-Sent Events (text/event-stream) that never ends by itself. It opens with `retry:` and `id:` lines ' +
  '(its position, no event). Each event is `id: <epoch>-<seq>`, `event: <type>` and `data: <one line of JSON>` whose ' +
  'JSON has `id`, `type`, `time` (ISO 8601) and, for domain, agent and addresses events, `domain: {host, name, uuid}`. ' +
  'Types: `domain` {event: defined|undefined|started|suspended|resumed|stopped|shutdown|pmsuspended|crashed|reboot, ' +
  "detail (libvirt's detail, e.g. booted, destroyed), state (as GET /domains says after it)}; `agent` {state: connected|disconnected, " +
  'reason: channel|domain-started|unknown}; `addresses` {interfaces: [{name, mac, addresses: [{family, address, prefix}]}]}, when ' +
  "they changed; `host` {host, state: up|down, error?}; and the stream's own, whose id is its position: `reset` {reason} " +
  '(first, when Last-Event-ID cannot be resumed: re-read the state), `overflow` {reason} (last, the client read too slowly) ' +
  'and `closing` {reason} (last, the gateway is stopping). A `: keep-alive` comment every events.heartbeatMs.';

export function eventRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    const hub = gateway.events;
    if (!hub) return;
    const config = gateway.config.events;
    app.get(
      '/events',
      {
        config: { permission: 'read' },
        schema: {
          operationId: 'streamEvents',
          tags: ['events'],
          summary: 'Domain, agent, address and host events, as Server-Sent Events',
          description:
            "Agent commands: none of the request's own; the gateway reads connected agents' interfaces " +
            '(guest-network-get-interfaces) on connect and every events.addressesPollMs for the addresses events. ' +
            'Events come from libvirt (lifecycle, reboot, agent lifecycle, its connections) and the agent sockets. ' +
            'An identity sees only the domains its patterns match. Last-Event-ID resumes from the last events.bufferSize events. ' +
            'A client that lets more than events.clientQueueBytes wait is sent an overflow event and disconnected. ' +
            'The 200 response describes the events; docs/api.md#events has examples.',
          querystring,
          headers,
          response: {
            200: {
              description: 'The event stream (see the description for its events)',
              content: { 'text/event-stream': { schema: z.string().describe(EVENT_FORMAT) } },
            },
            503: {
              ...problemResponses(503)[503]!,
              description: 'events.maxClients streams are open already (too_many_streams), or the gateway is shutting down',
            },
          },
        },
      },
      async (request, reply) => {
        const identity = request.identity;
        const patterns = request.query.domain?.map(compileDomainPattern) ?? null;
        const filter: StreamFilter = {
          types: request.query.types ? new Set(request.query.types as EventType[]) : null,
          domains: patterns ? (dom) => patterns.some((matches) => matches(dom)) : null,
          mayTouch: (dom) => !identity || mayTouch(identity, dom),
        };
        let stream: SseStream | null = null;
        const send = projectGate(identity, gateway.domains, request.log, (e: PublishedEvent, replayed: boolean) => {
          stream?.event(e.event.id, e.event.type, e.json, replayed);
        });
        // No event reaches the sink before `stream` is set: the bus publishes from other ticks than this one.
        const opened: OpenStream = hub.open(
          filter,
          {
            event: (e) => send(e, false),
            shutdown: () => stream?.end('closing', 'the gateway is shutting down'),
          },
          request.headers['last-event-id'],
        );
        stream = new SseStream(reply.raw, {
          maxQueuedBytes: config.clientQueueBytes,
          heartbeatMs: config.heartbeatMs,
          graceMs: GRACE_MS,
          retryMs: RETRY_MS,
          onClosed: () => {
            opened.close();
            // How much ever waited for this client: what events.clientQueueBytes is to be sized against.
            request.log.info({ peakQueuedBytes: stream?.peakQueuedBytes }, 'event stream closed');
          },
          onOverflow: (reason) => {
            opened.overflowed();
            request.log.warn({ reason }, 'event stream dropped: its client reads too slowly');
          },
        });
        stream.start(opened.position);
        if (opened.reset) stream.control('reset', opened.reset);
        for (const e of opened.replayed) send(e, true);
        reply.header('content-type', 'text/event-stream').header('cache-control', 'no-cache').header('x-accel-buffering', 'no');
        return reply.send(stream.body as never);
      },
    );
  };
}

/**
 * The events an identity with a Nova project (a project-scoped Keystone token) may see: a domain's events once its
 * Nova metadata is known to name that project (kept per domain, so a lookup at most once per definition), in the
 * order they came; a domain that cannot be looked up (undefined since) counts as in the project its metadata named
 * when last read (its last events reach its owner), and as in none when that was never read. Host events pass.
 * For every other identity, the patterns decided already (the stream's filter): events pass as they come.
 */
export function projectGate(
  identity: Identity | null,
  domains: Gateway['domains'],
  log: FastifyBaseLogger,
  deliver: (e: PublishedEvent, replayed: boolean) => void,
): (e: PublishedEvent, replayed: boolean) => void {
  if (identity?.novaProject === undefined) return deliver;
  let chain = Promise.resolve();
  // Each link catches its own failure: one event that could not be delivered must not stop the ones after it (a
  // rejected chain would skip them all) nor leave a rejection unhandled.
  const link = (step: () => void | Promise<void>) => {
    chain = chain.then(step).catch((err: unknown) => log.error({ err }, 'event not delivered'));
  };
  return (e, replayed) => {
    if (e.event.type === 'host') return link(() => deliver(e, replayed));
    const dom = e.event.domain;
    link(async () => {
      const project = await domains.eventProjectId({ ...dom, id: -1 });
      if (mayTouchProject(identity, project)) deliver(e, replayed);
    });
  };
}
