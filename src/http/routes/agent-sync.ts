// POST /domains/{domain}/agent/sync: guest-sync or guest-sync-delimited, for diagnosing a domain's agent
// channel: the round trip, and whether the channel was in step (nothing stale or garbled waiting on it).
import { z } from 'zod';
import type { Gateway } from '../../gateway.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from '../schemas.js';

const syncRequestSchema = z
  .object({
    command: z
      .enum(['guest-sync-delimited', 'guest-sync'])
      .optional()
      .describe(
        'guest-sync-delimited (the default over an agent socket) also makes the agent send 0xFF before its reply; ' +
          'guest-sync (the default, and the only one, through libvirt)',
      ),
  })
  .nullish();

const syncReportSchema = z
  .object({
    domain: domainRefSchema,
    backend: z.enum(['libvirt', 'agent-socket']),
    command: z.enum(['guest-sync-delimited', 'guest-sync']),
    id: z.number().int().describe('The random id sent'),
    roundTripMs: z.number(),
    inStep: z
      .boolean()
      .describe(
        'The first reply read answered this id. Through libvirt: the id came back (libvirt resynchronises on its own before every command)',
      ),
    discardedBytes: z
      .number()
      .int()
      .describe('Bytes thrown away before the answer (garbage, a stray 0xFF error reply); always 0 through libvirt'),
    staleReplies: z.number().int().describe('Replies to earlier commands or ids skipped before the answer; always 0 through libvirt'),
  })
  .meta({
    id: 'AgentSyncReport',
    example: {
      domain: EXAMPLE_DOMAIN,
      backend: 'agent-socket',
      command: 'guest-sync-delimited',
      id: 1833749201,
      roundTripMs: 1.9,
      inStep: true,
      discardedBytes: 0,
      staleReplies: 0,
    },
  });

export function agentSyncRoutes({ agent }: Gateway): DomainRoute[] {
  return [
    domainRoute({
      operationId: 'syncAgent',
      method: 'POST',
      path: '/agent/sync',
      permission: 'admin',
      tags: ['agent'],
      summary: 'Diagnose the agent channel: a guest-sync round trip and whether the channel was in step',
      description:
        'Agent command: guest-sync-delimited or guest-sync with a fresh random id, queued like any command. ' +
        'Over an agent socket the gateway reports what it found before the answer (garbage, stale replies) and leaves the channel in step. ' +
        'Through libvirt only guest-sync (400 for guest-sync-delimited): libvirt cannot read the 0xFF that comes before the ' +
        "reply and would mark the domain's agent broken until it reconnects. " +
        'The raw command endpoint refuses these commands; this is the way to send them.',
      body: syncRequestSchema,
      response: { 200: { description: 'What the round trip found', schema: syncReportSchema } },
      answer: async (request) => {
        const report = await agent.sync(request.domain, request.body?.command, request.agentOpts);
        return { backend: agent.transportFor(request.domain).backend, ...report };
      },
    }),
  ];
}
