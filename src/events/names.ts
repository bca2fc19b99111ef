// libvirt's event numbers in its own words (libvirt-domain.h: virDomainEventType, its detail enums, and
// virConnectDomainEventAgentLifecycleReason), lower case with '-' as the gateway's other names are. A number this
// table does not know (a newer libvirt) is still passed on, as `unknown-N`, rather than dropped.
import { AgentLifecycleState, type DomainStateName, LifecycleEvent } from '../libvirt/protocol.js';
import { DOMAIN_EVENTS, type DomainEventName } from './types.js';

/** virDomainEventType, by number: the vocabulary's own list, less `reboot` (libvirt's separate REBOOT event). */
const EVENT_NAMES: readonly DomainEventName[] = DOMAIN_EVENTS.slice(0, DOMAIN_EVENTS.indexOf('reboot'));

/** virDomainEvent*DetailType, by event. */
const DETAILS: Record<number, string[]> = {
  [LifecycleEvent.DEFINED]: ['added', 'updated', 'renamed', 'from-snapshot'],
  [LifecycleEvent.UNDEFINED]: ['removed', 'renamed'],
  [LifecycleEvent.STARTED]: ['booted', 'migrated', 'restored', 'from-snapshot', 'wakeup', 'recreated'],
  [LifecycleEvent.SUSPENDED]: [
    'paused',
    'migrated',
    'ioerror',
    'watchdog',
    'restored',
    'from-snapshot',
    'api-error',
    'postcopy',
    'postcopy-failed',
  ],
  [LifecycleEvent.RESUMED]: ['unpaused', 'migrated', 'from-snapshot', 'postcopy', 'postcopy-failed'],
  [LifecycleEvent.STOPPED]: ['shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from-snapshot', 'recreated'],
  [LifecycleEvent.SHUTDOWN]: ['finished', 'guest', 'host'],
  [LifecycleEvent.PMSUSPENDED]: ['memory', 'disk'],
  [LifecycleEvent.CRASHED]: ['panicked', 'crashloaded'],
};

/** virConnectDomainEventAgentLifecycleReason */
const AGENT_REASONS = ['unknown', 'domain-started', 'channel'];

export function lifecycleNames(event: number, detail: number): { event: DomainEventName; detail: string } | null {
  const name = EVENT_NAMES[event];
  if (!name) return null;
  return { event: name, detail: DETAILS[event]?.[detail] ?? `unknown-${detail}` };
}

/**
 * The state GET /domains reports once the event has happened, as the event implies it: asking libvirt instead would
 * answer a later state (a stop followed at once by a start) and hold every later event back behind the call. A domain
 * (un)defined while running keeps running: libvirt's event names it with its id then (-1 while inactive).
 */
export function stateAfter(event: DomainEventName, domainId: number): DomainStateName {
  switch (event) {
    case 'started':
    case 'resumed':
    case 'reboot':
      return 'running';
    case 'suspended':
      return 'paused';
    case 'stopped':
      return 'shutoff';
    case 'shutdown':
      return 'shutdown';
    case 'pmsuspended':
      return 'pmsuspended';
    case 'crashed':
      return 'crashed';
    case 'defined':
    case 'undefined':
      return domainId >= 0 ? 'running' : 'shutoff';
  }
}

export function agentStateName(state: number): 'connected' | 'disconnected' | null {
  return state === AgentLifecycleState.CONNECTED ? 'connected' : state === AgentLifecycleState.DISCONNECTED ? 'disconnected' : null;
}

export function agentReasonName(reason: number): string {
  return AGENT_REASONS[reason] ?? `unknown-${reason}`;
}
