// Node's process metrics (CPU, memory, event-loop lag, GC, handles), in a registry of their own made once per
// process. They describe the process, not one app: and prom-client's collector starts a GC observer and an
// event-loop delay monitor that nothing can stop, so one per app would pile up in a process that builds many
// apps (the tests build hundreds). Each app's /metrics answers these followed by its own.
import { collectDefaultMetrics, Registry } from 'prom-client';

export const METRIC_PREFIX = 'qga_gateway_';

let shared: Registry | null = null;

export function processMetrics(): Registry {
  if (!shared) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared, prefix: METRIC_PREFIX });
  }
  return shared;
}
