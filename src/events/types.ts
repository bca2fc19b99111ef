// src/events: what happens to domains, their agents and the libvirt hosts, as events for GET /events. types.ts is
// the event vocabulary (the stream's contract, docs/api.md#events); names.ts turns libvirt's numbers into its words;
// bus.ts numbers events and keeps the last ones (ring.ts) for clients that resume; the sources translate what the
// backends report (libvirt-source.ts: libvirt's events and its connections; socket-source.ts: agent sockets appearing,
// their agents answering); address-watcher.ts reads connected agents' interfaces through the agent service and
// reports changes; filter.ts decides what one stream sees; hub.ts builds them and counts the streams open. The HTTP
// route (src/http/routes/events.ts) frames them as Server-Sent Events; nothing here knows about HTTP.
import type { InterfaceAddresses } from '../agent/guest/interface-addresses.js';
import type { DomainStateName } from '../libvirt/protocol.js';

/** The event types a stream can ask for with ?types=. */
export const EVENT_TYPES = ['domain', 'agent', 'addresses', 'host'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What the stream itself says: `reset` (resuming is not possible), `overflow` (too slow, dropped), `closing` (shutdown). */
export const CONTROL_TYPES = ['reset', 'overflow', 'closing'] as const;
export type ControlType = (typeof CONTROL_TYPES)[number];

/** A domain as every answer about one names it. */
export interface EventDomain {
  host: string;
  name: string;
  uuid: string;
}

/** libvirt's lifecycle events (virDomainEventType), plus `reboot`: libvirt's REBOOT event, the guest's own reset. */
export const DOMAIN_EVENTS = [
  'defined',
  'undefined',
  'started',
  'suspended',
  'resumed',
  'stopped',
  'shutdown',
  'pmsuspended',
  'crashed',
  'reboot',
] as const;
export type DomainEventName = (typeof DOMAIN_EVENTS)[number];

export type EventBody =
  | { type: 'domain'; domain: EventDomain; event: DomainEventName; detail: string; state: DomainStateName }
  | { type: 'agent'; domain: EventDomain; state: 'connected' | 'disconnected'; reason: string }
  | { type: 'addresses'; domain: EventDomain; interfaces: InterfaceAddresses[] }
  | { type: 'host'; host: string; state: 'up' | 'down'; error?: string };

/** An event as streamed: its body with the id (epoch-sequence, see bus.ts) and when the gateway learnt it. */
export type GatewayEvent = EventBody & { id: string; time: string };

/** A stream's own event: `id` is the stream's position (the last event it delivered), so Last-Event-ID resumes right after it. */
export interface ControlEvent {
  type: ControlType;
  id: string;
  time: string;
  reason: string;
}
