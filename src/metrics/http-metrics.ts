// Counts every answered request by its route pattern, in onResponse: after the answer went out (a download's
// last byte included), for refusals (401, 403, 429) and unmatched URLs (404) as well.
import type { FastifyInstance } from 'fastify';
import type { GatewayMetrics } from './gateway-metrics.js';

export function registerHttpMetrics(app: FastifyInstance, metrics: GatewayMetrics): void {
  if (!metrics.enabled) return;
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
  });
}
