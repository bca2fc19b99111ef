// Node's process metrics (CPU, memory, event-loop lag, GC, handles), in a registry of their own made once per
// process. They describe the process, not one app: and prom-client's collector starts a GC observer and an
// event-loop delay monitor that nothing can stop, so one per app would pile up in a process that builds many
// apps (the tests build hundreds). Each app's /metrics answers these followed by its own.
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

export const METRIC_PREFIX = 'qga_gateway_';

let shared: Registry | null = null;

export function processMetrics(): Registry {
  if (!shared) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared, prefix: METRIC_PREFIX });
    dropTotalGauges(shared);
  }
  return shared;
}

/**
 * `_total` names a counter: Prometheus's linter (promtool check metrics) refuses a gauge so named. prom-client adds
 * three, nodejs_active_{handles,requests,resources}_total; the gauges by type beside them (nodejs_active_handles
 * and so on) stay, and their sum() is the same count.
 */
function dropTotalGauges(registry: Registry): void {
  for (const metric of registry.getMetricsAsArray()) {
    if (metric instanceof Gauge && metric.name.endsWith('_total')) registry.removeSingleMetric(metric.name);
  }
}
