import { describe, expect, it } from 'vitest';
import { agentStatusFromXml } from '../../src/domains/agent-state.js';

describe('agentStatusFromXml', () => {
  it('reads the channel state libvirt writes into the live XML', () => {
    const xml = (state: string) => `<domain><devices>
      <channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-1-g/org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0' state='${state}'/><alias name='channel0'/></channel></devices></domain>`;
    expect(agentStatusFromXml(xml('connected'))).toEqual({ state: 'connected', channel: true });
    expect(agentStatusFromXml(xml('disconnected'))).toEqual({ state: 'disconnected', channel: true });
  });

  it('knows a domain without the channel, and one whose XML has no state', () => {
    expect(
      agentStatusFromXml(
        "<domain><devices><channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel></devices></domain>",
      ),
    ).toEqual({ state: 'disconnected', channel: false });
    expect(
      agentStatusFromXml(
        '<domain><devices><channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel></devices></domain>',
      ),
    ).toEqual({ state: 'unknown', channel: true });
  });
});
