// GET /hosts: the libvirt daemons the gateway serves and whether each is reachable. Talks to no guest.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Gateway } from '../../gateway.js';
import type { LibvirtHost } from '../../libvirt/hosts.js';
import { problemResponses } from '../problem.js';

export const hostSchema = z
  .object({
    name: z.string().describe('How domain ids qualify this host: name:domain'),
    uri: z.string().describe('The libvirt URI the gateway connects to'),
    transport: z.enum(['unix', 'tcp', 'tls']),
    state: z.enum(['up', 'degraded', 'down']).describe('up: every connection open; degraded: some; down: none (its domains answer 503 host_unavailable)'),
    connectionsUp: z.number().int(),
    connections: z.number().int(),
    reconnects: z.number().int().describe('Connections re-established after a drop since start-up'),
    lastError: z.string().nullable().describe('Why the last connection attempt failed; null while every connection is open'),
  })
  .meta({
    id: 'LibvirtHost',
    example: { name: 'local', uri: 'qemu:///system', transport: 'unix', state: 'up', connectionsUp: 3, connections: 3, reconnects: 0, lastError: null },
  });

export function hostBody(h: LibvirtHost): z.infer<typeof hostSchema> {
  const up = h.pool.up;
  return {
    name: h.name,
    uri: h.uri,
    transport: h.transportKind as 'unix' | 'tcp' | 'tls',
    state: h.state,
    connectionsUp: up,
    connections: h.pool.size,
    reconnects: h.pool.reconnects,
    lastError: up === h.pool.size ? null : (h.pool.lastError?.message ?? null),
  };
}

export function hostRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/hosts',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['hosts'],
          summary: 'The libvirt hosts and their connection state',
          description: 'Every libvirt daemon in the configuration (libvirt.hosts; one named "local" by default), with the state of its connections. A host that is down makes only its own domains unavailable.',
          response: { 200: z.object({ hosts: z.array(hostSchema) }), ...problemResponses() },
        },
      },
      async () => ({ hosts: gateway.hosts.list.map(hostBody) }),
    );
  };
}
