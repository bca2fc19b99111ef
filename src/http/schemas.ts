// Schemas shared by several routes.
import { z } from 'zod';
import { domainIdString } from '../config/domain-id.js';
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
