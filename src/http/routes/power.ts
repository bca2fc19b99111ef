// POST /domains/{domain}/power: shutdown, halt, reboot, suspend. Answers 202 once the guest has the request;
// the effect shows on GET /domains/{domain} (Location), whose state and agentState change.
import { z } from 'zod';
import { POWER_ACTIONS } from '../../agent/power/power.js';
import type { Gateway } from '../../gateway.js';
import { DOMAIN_STATES } from '../../libvirt/protocol.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { domainRefSchema } from '../schemas.js';

const powerRequestSchema = z
  .strictObject({
    action: z
      .enum(POWER_ACTIONS)
      .describe('shutdown (powerdown), halt, reboot, suspend-ram (S3), suspend-disk (S4, hibernate) or suspend-hybrid'),
  })
  .meta({ id: 'PowerRequest', example: { action: 'shutdown' } });

const powerAcceptedSchema = z
  .object({
    domain: domainRefSchema,
    action: z.enum(POWER_ACTIONS),
    command: z.string().describe('The agent command that carries it'),
    accepted: z.literal(true),
    monitor: z.string().describe('Where to watch the effect: GET this domain resource (also the Location header)'),
    expect: z.object({
      state: z.enum(DOMAIN_STATES).describe('The state the domain resource should reach; reboot stays running'),
      lifecycleEvents: z.array(z.string()).describe('libvirt lifecycle events that confirm the effect, in order'),
      agentState: z.string().describe('What happens to agentState meanwhile'),
    }),
  })
  .meta({
    id: 'PowerAccepted',
    example: {
      domain: { host: 'local', name: 'guest1', uuid: '8f1c3a52-1b5e-4c1a-9d7e-0a0000000001' },
      action: 'shutdown',
      command: 'guest-shutdown',
      accepted: true,
      monitor: '/domains/8f1c3a52-1b5e-4c1a-9d7e-0a0000000001',
      expect: { state: 'shutoff', lifecycleEvents: ['shutdown', 'stopped'], agentState: 'disconnected' },
    },
  });

export function powerRoutes({ domains, power }: Gateway): DomainRoute[] {
  return [
    domainRoute({
      operationId: 'requestPowerAction',
      method: 'POST',
      path: '/power',
      permission: 'power',
      tags: ['power'],
      summary: 'Shut down, halt, reboot or suspend the guest from inside',
      description:
        'Agent commands: guest-shutdown (shutdown, halt, reboot), guest-suspend-ram / -disk / -hybrid. ' +
        'None replies on success, so the gateway never waits for a reply: ' +
        'shutdown uses virDomainShutdownFlags(GUEST_AGENT), reboot virDomainReboot(GUEST_AGENT), ' +
        'suspend-* virDomainPMSuspendForDuration; ' +
        'halt sends guest-shutdown {"mode":"halt"} and takes the agent vanishing as success. ' +
        'Answers 202 when the guest has the request; watch GET /domains/{domain} (Location) for the state in `expect`. ' +
        '501 when the agent lacks the command or the guest the suspend mode; 409 while the gateway holds the file systems frozen.',
      body: powerRequestSchema,
      response: { 202: { description: 'The guest took the request (it acts on it asynchronously)', schema: powerAcceptedSchema } },
      problems: [501],
      answer: async (request, reply) => {
        const dom = request.domain;
        const outcome = await power.perform(dom, request.body.action, request.agentOpts);
        request.log.info({ domain: dom.name, action: outcome.action }, 'power action sent');
        const monitor = `/domains/${domains.pathId(dom)}`;
        reply.code(202).header('location', monitor);
        return { ...outcome, accepted: true as const, monitor };
      },
    }),
  ];
}
