// Counts every request by its route pattern when it is over: after the answer went out (a download's last byte
// included), or its client went away; for refusals (401, 403, 429) and unmatched URLs (404) as well.
import type { RequestDone } from './request-context.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';

export function registerHttpMetrics(requestDone: RequestDone, metrics: GatewayMetrics): void {
  if (!metrics.enabled) return;
  requestDone.add((request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
  });
}
