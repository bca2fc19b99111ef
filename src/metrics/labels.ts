// Label values for the metrics, each from a small fixed set: every distinct value is one more time series
// in Prometheus, so nothing a client chooses (a URL, a raw command's name, a method) becomes a label as is.
import { commandFacts } from '../agent/commands/index.js';
import type { ErrorCode, GatewayError } from '../errors.js';

/** A command of qemu-ga's schema (the catalogue, src/agent/commands/) by its name; a raw command naming anything else is "other". */
export function commandLabel(execute: string): string {
  return commandFacts(execute) ? execute : 'other';
}

/** How an agent call ended, as the command histogram's `outcome` label. */
export const OUTCOMES = ['ok', 'agent_error', 'not_supported', 'timeout', 'queue_full', 'unavailable', 'client_gone', 'error'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** The agent, its channel, the domain or libvirt was not there to run the command: nothing to do with the command itself. */
const UNAVAILABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'agent_not_configured',
  'agent_not_connected',
  'agent_unresponsive',
  'agent_busy',
  'domain_not_running',
  'domain_not_found',
  'libvirt_unavailable',
  'host_unavailable',
  'shutting_down',
]);

export function outcomeOf(error: GatewayError | null): Outcome {
  if (!error) return 'ok';
  switch (error.code) {
    case 'agent_error':
      // qemu-ga's CommandNotFound: unknown to this agent, or disabled (e.g. by -b, or while frozen).
      return error.extras.agentClass === 'CommandNotFound' ? 'not_supported' : 'agent_error';
    case 'command_not_supported':
      return 'not_supported';
    case 'deadline_exceeded':
      return 'timeout';
    case 'agent_queue_full':
      return 'queue_full';
    case 'client_gone':
      return 'client_gone';
    default:
      return UNAVAILABLE.has(error.code) ? 'unavailable' : 'error';
  }
}

/** HTTP methods this gateway serves; anything else a client sends is counted as "other". */
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'other';
}

/** The route pattern (/domains/:domain/files/*), never the URL; requests that matched no route share one value. */
export function routeLabel(routeUrl: string | undefined): string {
  return routeUrl ?? 'unmatched';
}
