// libvirt's happenings as events: its lifecycle, reboot and agent-lifecycle events for every host, and each host
// going up (a first connection open) or down (none left). Subscribes to what src/libvirt already receives, and
// gives back a function that removes every listener it added.
import type { HostAgentLifecycleEvent, HostLifecycleEvent, HostRebootEvent, LibvirtHosts } from '../libvirt/hosts.js';
import { type WireDomain, uuidToString } from '../libvirt/protocol.js';
import type { EventBus } from './bus.js';
import { agentReasonName, agentStateName, lifecycleNames, stateAfter } from './names.js';
import type { EventDomain } from './types.js';

const domainOf = (host: string, dom: WireDomain): EventDomain => ({ host, name: dom.name, uuid: uuidToString(dom.uuid) });

export function libvirtEvents(hosts: LibvirtHosts, bus: EventBus): () => void {
  const lifecycle = (m: HostLifecycleEvent) => {
    const names = lifecycleNames(m.event, m.detail);
    if (!names) return;
    bus.publish({ type: 'domain', domain: domainOf(m.host, m.dom), ...names, state: stateAfter(names.event, m.dom.id) });
  };
  // libvirt's REBOOT event has no detail: the guest was reset (a reboot from inside, through its agent, or virsh reset).
  const reboot = (m: HostRebootEvent) =>
    bus.publish({ type: 'domain', domain: domainOf(m.host, m.dom), event: 'reboot', detail: 'reset', state: 'running' });
  const agent = (m: HostAgentLifecycleEvent) => {
    const state = agentStateName(m.state);
    if (state) bus.publish({ type: 'agent', domain: domainOf(m.host, m.dom), state, reason: agentReasonName(m.reason) });
  };
  hosts.on('lifecycle', lifecycle);
  hosts.on('reboot', reboot);
  hosts.on('agentLifecycle', agent);
  const off: (() => void)[] = [
    () => hosts.off('lifecycle', lifecycle),
    () => hosts.off('reboot', reboot),
    () => hosts.off('agentLifecycle', agent),
  ];

  for (const h of hosts.list) {
    // Up once a connection is open, down once none is: a pool reconnecting one of several stays up.
    let reported: 'up' | 'down' | null = null;
    const up = () => {
      if (reported === 'up') return;
      reported = 'up';
      bus.publish({ type: 'host', host: h.name, state: 'up' });
    };
    const down = (err: Error) => {
      if (h.pool.up > 0 || reported === 'down') return;
      reported = 'down';
      bus.publish({ type: 'host', host: h.name, state: 'down', error: err.message });
    };
    h.pool.on('connectionUp', up);
    h.pool.on('connectionDown', down);
    off.push(() => {
      h.pool.off('connectionUp', up);
      h.pool.off('connectionDown', down);
    });
  }
  return () => {
    for (const f of off) f();
  };
}
