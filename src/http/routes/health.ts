// GET /healthz (the process answers) and GET /readyz (libvirt is reachable). Neither touches a guest.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Gateway } from '../../gateway.js';

const readySchema = z.object({
  status: z.enum(['ready', 'not-ready']),
  libvirt: z.object({
    connectionsUp: z.number().int(),
    connections: z.number().int(),
    reconnects: z.number().int(),
    lastError: z.string().nullable(),
  }),
});

export function healthRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/healthz',
      {
        config: { permission: 'public' },
        schema: { tags: ['health'], summary: 'Liveness: the process is serving', response: { 200: z.object({ status: z.literal('ok') }) } },
      },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/readyz',
      {
        config: { permission: 'public' },
        schema: {
          tags: ['health'],
          summary: 'Readiness: at least one libvirt connection is open',
          description: 'Never depends on a guest: a hung guest agent does not make the gateway unready.',
          response: { 200: readySchema, 503: readySchema },
        },
      },
      async (_request, reply) => {
        const { pool } = gateway;
        const up = pool.up;
        const body = {
          status: up > 0 ? ('ready' as const) : ('not-ready' as const),
          libvirt: { connectionsUp: up, connections: pool.size, reconnects: pool.reconnects, lastError: up > 0 ? null : (pool.lastError?.message ?? null) },
        };
        return reply.code(up > 0 ? 200 : 503).send(body);
      },
    );
  };
}
