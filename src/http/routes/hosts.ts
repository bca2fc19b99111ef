// GET /hosts: the libvirt daemons the gateway serves and whether each is reachable, and the agent sockets'
// host. Talks to no guest.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Gateway } from '../../gateway.js';
import type { AgentSocketHost } from '../../agent-socket/host.js';
import type { LibvirtHost } from '../../libvirt/hosts.js';

export const hostSchema = z
  .object({
    name: z.string().describe('How domain ids qualify this host: name:domain'),
    backend: z.enum(['libvirt', 'agent-socket']),
    uri: z.string().describe('The libvirt URI the gateway connects to; for agent sockets, where they are found'),
    transport: z.enum(['unix', 'tcp', 'tls', 'agent-socket']),
    state: z
      .enum(['up', 'degraded', 'down'])
      .describe('up: every connection open; degraded: some; down: none (its domains answer 503 host_unavailable)'),
    connectionsUp: z.number().int().describe('Open connections; for agent sockets, channels open and in step'),
    connections: z.number().int().describe('Connections kept; for agent sockets, the domains configured or found'),
    reconnects: z.number().int().describe('Connections re-established after a drop since start-up'),
    lastError: z.string().nullable().describe('Why the last connection attempt failed; null while every connection is open'),
  })
  .meta({
    id: 'LibvirtHost',
    example: {
      name: 'local',
      backend: 'libvirt',
      uri: 'qemu:///system',
      transport: 'unix',
      state: 'up',
      connectionsUp: 3,
      connections: 3,
      reconnects: 0,
      lastError: null,
    },
  });

export function hostBody(h: LibvirtHost): z.infer<typeof hostSchema> {
  const up = h.pool.up;
  return {
    name: h.name,
    backend: 'libvirt',
    uri: h.uri,
    transport: h.transportKind as 'unix' | 'tcp' | 'tls',
    state: h.state,
    connectionsUp: up,
    connections: h.pool.size,
    reconnects: h.pool.reconnects,
    lastError: up === h.pool.size ? null : (h.pool.lastError?.message ?? null),
  };
}

/** The agent sockets' host is always up: there is no daemon to reach, each domain's socket answers for itself. */
export async function agentSocketHostBody(h: AgentSocketHost, where: string): Promise<z.infer<typeof hostSchema>> {
  const { domains, connected } = await h.summary();
  return {
    name: h.name,
    backend: 'agent-socket',
    uri: where,
    transport: 'agent-socket',
    state: 'up',
    connectionsUp: connected,
    connections: domains,
    reconnects: 0,
    lastError: null,
  };
}

/** Every host: libvirt's first, then the agent sockets'. */
export async function allHostBodies(gateway: Gateway): Promise<z.infer<typeof hostSchema>[]> {
  const bodies = gateway.hosts.list.map(hostBody);
  if (gateway.agentSockets) {
    const c = gateway.config.agentSockets;
    const where = [
      ...c.directories.map((d) => d.glob),
      ...(c.sockets.length ? [`${c.sockets.length} listed socket${c.sockets.length > 1 ? 's' : ''}`] : []),
    ].join(', ');
    bodies.push(await agentSocketHostBody(gateway.agentSockets, where));
  }
  return bodies;
}

export function hostRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/hosts',
      {
        config: { permission: 'read', responseDescriptions: { 200: 'Every host, libvirt first' } },
        schema: {
          operationId: 'listHosts',
          tags: ['hosts'],
          summary: 'The libvirt hosts and their connection state',
          description:
            'Every libvirt daemon in the configuration (libvirt.hosts; one named "local" by default), ' +
            "with the state of its connections, then the agent sockets' host (agentSockets) when configured. " +
            'A host that is down makes only its own domains unavailable.',
          response: { 200: z.object({ hosts: z.array(hostSchema) }) },
        },
      },
      async () => ({ hosts: await allHostBodies(gateway) }),
    );
  };
}
