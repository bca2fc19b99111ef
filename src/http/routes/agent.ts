// GET /domains/{domain}/agent: is the agent there, which version, which commands it offers.
import { z } from 'zod';
import { guestPing } from '../../agent/commands/info.js';
import type { Gateway } from '../../gateway.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { domainRefSchema } from '../schemas.js';

const agentInfoSchema = z
  .object({
    domain: domainRefSchema,
    ping: z.object({
      ok: z.literal(true),
      roundTripMs: z.number().describe('guest-ping round trip (through libvirt or the agent socket), in milliseconds'),
    }),
    version: z.string().describe("qemu-ga's version"),
    commands: z.array(
      z.object({
        name: z.string(),
        enabled: z.boolean(),
        successResponse: z.boolean().describe('false for commands that send no reply on success (guest-shutdown, guest-suspend-*)'),
      }),
    ),
  })
  .meta({
    id: 'AgentInfo',
    example: {
      domain: { host: 'local', name: 'guest1', uuid: '8f1c3a52-1b5e-4c1a-9d7e-0a0000000001' },
      ping: { ok: true, roundTripMs: 3.2 },
      version: '7.2.19',
      commands: [{ name: 'guest-ping', enabled: true, successResponse: true }],
    },
  });

const pingSchema = z
  .object({
    domain: domainRefSchema,
    ok: z.literal(true),
    roundTripMs: z.number().describe('guest-ping round trip (through libvirt or the agent socket), queue wait included, in milliseconds'),
  })
  .meta({
    id: 'AgentPing',
    example: { domain: { host: 'local', name: 'guest1', uuid: '8f1c3a52-1b5e-4c1a-9d7e-0a0000000001' }, ok: true, roundTripMs: 3.2 },
  });

const roundedMsSince = (t0: number) => Math.round((performance.now() - t0) * 100) / 100;

export function agentRoutes({ agent }: Gateway): DomainRoute[] {
  return [
    domainRoute({
      operationId: 'pingAgent',
      method: 'GET',
      path: '/agent/ping',
      permission: 'read',
      tags: ['agent'],
      summary: 'Is the guest agent answering?',
      description: 'Agent command: guest-ping. The cheapest liveness check of a guest agent; any error answer means no.',
      response: { 200: { description: 'The agent answered (or not, in time)', schema: pingSchema } },
      answer: async ({ domain, agentOpts }) => {
        const started = performance.now();
        await agent.execute(domain, guestPing, undefined, agentOpts);
        return { ok: true as const, roundTripMs: roundedMsSince(started) };
      },
    }),

    domainRoute({
      operationId: 'getAgentInfo',
      method: 'GET',
      path: '/agent',
      permission: 'read',
      tags: ['agent'],
      summary: "The guest agent's liveness, version and commands",
      description: 'Agent commands: guest-ping, then guest-info.',
      response: { 200: { description: "The agent's version and commands", schema: agentInfoSchema } },
      answer: async ({ domain, agentOpts }) => {
        const started = performance.now();
        await agent.execute(domain, guestPing, undefined, agentOpts);
        const roundTripMs = roundedMsSince(started);
        // What the agent offers, asked afresh: also what later commands are gated on.
        const info = await agent.refreshCapabilities(domain, agentOpts);
        return {
          ping: { ok: true as const, roundTripMs },
          version: info.version,
          commands: info.supported_commands
            .map((c) => ({ name: c.name, enabled: c.enabled, successResponse: c['success-response'] }))
            .sort((a, b) => a.name.localeCompare(b.name)),
        };
      },
    }),
  ];
}
