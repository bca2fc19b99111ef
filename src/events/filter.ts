// What one stream sees: the event types it asked for (?types=), the domains it named (?domain=: names, UUIDs and
// globs, matched as identities' domain patterns are), and only domains its identity may touch. The HTTP route
// builds the predicates (it knows identities and patterns); this decides with them, for live and replayed events.
import type { EventDomain, EventType, GatewayEvent } from './types.js';

export interface StreamFilter {
  /** null: every type. */
  types: ReadonlySet<EventType> | null;
  /** The ?domain= filter; null: every domain. A stream with one gets no host events: they are about no domain. */
  domains: ((dom: EventDomain) => boolean) | null;
  /** The identity's domain patterns; host events need none (GET /hosts shows every host to scope read). */
  mayTouch: (dom: EventDomain) => boolean;
}

export const EVERYTHING: StreamFilter = { types: null, domains: null, mayTouch: () => true };

export function accepts(filter: StreamFilter, event: GatewayEvent): boolean {
  if (filter.types && !filter.types.has(event.type)) return false;
  if (event.type === 'host') return filter.domains === null;
  return filter.mayTouch(event.domain) && (filter.domains === null || filter.domains(event.domain));
}
