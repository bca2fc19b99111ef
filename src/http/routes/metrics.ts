// GET /metrics: the Prometheus text exposition. Needs a token with the `metrics` scope (a scraper's token holds
// just that one), or none when metrics.public; not served at all (404) when metrics.enabled is false.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { prometheusContentType } from 'prom-client';
import { z } from 'zod';
import type { Gateway } from '../../gateway.js';

export function metricsRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    const config = gateway.config.metrics;
    // Not registered rather than refused: a gateway without metrics has no such resource, in the API document too.
    if (!config.enabled) return;
    app.get(
      '/metrics',
      {
        config: { permission: config.public ? 'public' : 'metrics' },
        schema: {
          operationId: 'getMetrics',
          tags: ['metrics'],
          summary: 'Prometheus metrics',
          description:
            'Text exposition format, names prefixed qga_gateway_: HTTP requests by route pattern and status, agent command durations by command and outcome, ' +
            'agent queue depth and rejections, agents connected, libvirt connections up and reconnects per host, ' +
            'guest file bytes read and written, freezes in force, and the Node process. ' +
            'Needs the `metrics` scope unless metrics.public is true. ' +
            'No domain appears in a label unless metrics.perDomainLabels is true.',
          response: {
            200: { description: 'The metrics', content: { [prometheusContentType]: { schema: z.string() } } },
          },
        },
      },
      async (_request, reply) => {
        const text = await gateway.metrics.text();
        return reply.type(gateway.metrics.contentType).send(text);
      },
    );
  };
}
