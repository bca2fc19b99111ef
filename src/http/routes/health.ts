// GET /healthz (the process answers) and GET /readyz (libvirt is reachable). Neither touches a guest.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Gateway } from '../../gateway.js';
import { allHostBodies, hostSchema } from './hosts.js';

const readySchema = z.object({
  status: z.enum(['ready', 'not-ready']),
  libvirt: z
    .object({
      connectionsUp: z.number().int(),
      connections: z.number().int(),
      reconnects: z.number().int(),
      lastError: z.string().nullable(),
    })
    .describe('All libvirt hosts together'),
  hosts: z.array(hostSchema),
});

export function healthRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/healthz',
      {
        config: { permission: 'public', responseDescriptions: { 200: 'The process is serving' } },
        schema: {
          operationId: 'getLiveness',
          tags: ['health'],
          summary: 'Liveness: the process is serving',
          description:
            'Answers as long as the process serves HTTP; checks nothing else (neither libvirt nor any guest), so that a supervisor ' +
            'restarts the gateway only when the process itself is stuck.',
          response: { 200: z.object({ status: z.literal('ok') }) },
        },
      },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/readyz',
      {
        config: {
          permission: 'public',
          responseDescriptions: { 200: 'Ready: a libvirt connection is open', 503: 'Not ready: no libvirt connection is open' },
        },
        schema: {
          operationId: 'getReadiness',
          tags: ['health'],
          summary: 'Readiness: at least one libvirt connection is open',
          description:
            'Never depends on a guest: a hung guest agent does not make the gateway unready. With several hosts, ready while any host is reachable: ' +
            'one host down makes only its own domains unavailable (see hosts[].state), and taking the gateway out of service would cut off the others.',
          response: {
            200: readySchema,
            503: readySchema,
          },
        },
      },
      async (_request, reply) => {
        const hosts = await allHostBodies(gateway);
        const libvirtHosts = hosts.filter((h) => h.backend === 'libvirt');
        const sum = (f: (h: (typeof hosts)[number]) => number) => libvirtHosts.reduce((n, h) => n + f(h), 0);
        const up = sum((h) => h.connectionsUp);
        // Without libvirt (agent sockets only) there is no daemon to wait for.
        const ready = up > 0 || libvirtHosts.length === 0;
        const body = {
          status: ready ? ('ready' as const) : ('not-ready' as const),
          libvirt: {
            connectionsUp: up,
            connections: sum((h) => h.connections),
            reconnects: sum((h) => h.reconnects),
            lastError: up > 0 ? null : (libvirtHosts.find((h) => h.lastError)?.lastError ?? null),
          },
          hosts,
        };
        return reply.code(ready ? 200 : 503).send(body);
      },
    );
  };
}
