// Schemas shared by several routes.
import { z } from 'zod';
import { domainIdString } from '../config/domain-id.js';
import { novaInstanceSchema } from '../domains/nova-metadata.js';
import type { DomainRef } from '../domains/vocabulary.js';
import { DOMAIN_STATES } from '../libvirt/protocol.js';

export const domainParams = z.object({
  domain: domainIdString().describe(
    'A domain name or UUID (an OpenStack instance UUID works as is); host:name or host:uuid picks the host when several are ' +
      'configured and the name is on more than one',
  ),
});

/** ?timeoutMs= on every route that talks to a guest agent. */
export function deadlineQuery(maxTimeoutMs: number) {
  return z.object({
    timeoutMs: z.coerce
      .number()
      .int()
      .min(1)
      .max(maxTimeoutMs)
      .optional()
      .describe(
        `Deadline for each agent command of this request, queue wait included, in milliseconds (at most ${maxTimeoutMs}); ` +
          "the command kind's default when absent",
      ),
  });
}

export const domainRefSchema = z
  .object({
    host: z.string().describe('The libvirt host the domain is on ("local" unless libvirt.hosts names several)'),
    name: z.string(),
    uuid: z.guid(),
  })
  .meta({ id: 'DomainRef' });

export const EXAMPLE_DOMAIN = { host: 'local', name: 'guest1', uuid: '3b5a8f0e-1c2d-4e6f-8a9b-0c1d2e3f4a01' };

/** The domain at the top of every answer about one domain. */
export const domainRef = (dom: DomainRef) => ({ host: dom.host, name: dom.name, uuid: dom.uuid });

export const EXAMPLE_NOVA = {
  instanceName: 'web-1',
  project: { id: '4c9a1b2e7d3f4e5a8b6c0d1e2f3a4b5c', name: 'web' },
  user: { id: '9f8e7d6c5b4a49382716a5b4c3d2e1f0', name: 'alice' },
  flavor: { name: 'm1.small', vcpus: 1, memoryMb: 2048, diskGb: 20 },
  createdAt: '2026-12-01T10:00:00.000Z',
};

/** What Nova wrote into a domain's libvirt metadata (src/domains/nova-metadata.ts reads it). */
export const novaSchema = novaInstanceSchema
  .describe(
    "What OpenStack Nova wrote into the domain's libvirt metadata (<nova:instance>); absent when the domain has none, " +
      "or none that reads as Nova's (agent-socket domains never have)",
  )
  .meta({ id: 'NovaInstance', example: EXAMPLE_NOVA });

export const domainSchema = z
  .object({
    host: z.string().describe("The host the domain is on: a libvirt host, or the agent sockets' host (agentSockets.host)"),
    backend: z.enum(['libvirt', 'agent-socket']).describe('How its agent is reached: through libvirt, or straight over its agent socket'),
    name: z.string(),
    uuid: z.guid().describe("libvirt's UUID; for an agent-socket domain, a stable UUID made from its socket path"),
    id: z.number().int().nullable().describe("libvirt's domain id; null while the domain is not running, and for agent-socket domains"),
    state: z.enum(DOMAIN_STATES),
    agentState: z
      .enum(['connected', 'disconnected', 'unknown'])
      .describe("The guest agent's connection, from libvirt's agent lifecycle events"),
    agentChannel: z.boolean().nullable().describe('Whether the domain has an org.qemu.guest_agent.0 channel; null when unknown'),
    nova: novaSchema.optional(),
  })
  .meta({
    id: 'Domain',
    example: {
      host: 'local',
      backend: 'libvirt',
      name: 'guest1',
      uuid: '8f1c3a52-1b5e-4c1a-9d7e-0a0000000001',
      id: 7,
      state: 'running',
      agentState: 'connected',
      agentChannel: true,
      nova: EXAMPLE_NOVA,
    },
  });
export type DomainBody = z.infer<typeof domainSchema>;

/** A query parameter listing values: ?x=a&x=b and ?x=a,b both work; duplicates and blanks dropped; null when none. */
export const listParam = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) => {
    if (v === undefined) return null;
    const tokens = [
      ...new Set(
        (Array.isArray(v) ? v : [v])
          .flatMap((s) => s.split(','))
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    ];
    return tokens.length ? tokens : null;
  });
