// A gateway in process in front of fake libvirtds (one a host), listening on a real loopback port for the browser,
// with an agent whose facts are the replies recorded from qemu-ga 10.0 (test/fixtures/qga/10.0) and whose
// interfaces carry each domain's own address, so that a row showing another row's address is caught.
import { AgentLifecycleState } from '../../../src/libvirt/protocol.js';
import { FakeLibvirtd, waitFor, type AgentHandler, type FakeDomain } from '../../support/fake-libvirtd.js';
import { fakeGuestState, guestFactsAgent } from '../../support/guest-facts-agent.js';
import { fixtureText } from '../../support/qga-fixtures.js';
import { startTestGateway, type GatewayOverrides, type TestGateway } from '../../support/test-gateway.js';

/** The guest address in the recorded guest-network-get-interfaces reply, replaced by each domain's own. */
const RECORDED_IPV4 = '10.0.2.15';

export interface FleetDomain extends Partial<FakeDomain> {
  name: string;
  /** The IPv4 address its agent reports; none: the recorded one. */
  ipv4?: string;
}

export interface Fleet {
  /** http://localhost:<port>: the page's origin (the CORS tests use 127.0.0.1 as the other one). */
  url: string;
  port: number;
  gw: TestGateway;
  /** The fake libvirtd of each host, by host name. */
  fakes: Map<string, FakeLibvirtd>;
  /** Changes the IPv4 address the domain's agent reports from now on. */
  setIpv4(host: string, domain: string, ipv4: string): void;
  /** Sets the domain's agent channel and emits libvirt's agent lifecycle event, as libvirtd does. */
  agentEvent(host: string, domain: string, state: 'connected' | 'disconnected'): void;
  close(): Promise<void>;
}

/** The recorded facts of qemu-ga 10.0, with the domain's own IPv4 address on its interface. */
export function fleetAgent(ipv4: (domain: string) => string | undefined): AgentHandler {
  const facts = guestFactsAgent(fakeGuestState());
  return (domain, command, timeout) => {
    if (command.execute !== 'guest-network-get-interfaces') return facts(domain, command, timeout);
    const ip = ipv4(domain.name) ?? RECORDED_IPV4;
    return { raw: fixtureText('10.0', 'guest-network-get-interfaces').replaceAll(`"${RECORDED_IPV4}"`, JSON.stringify(ip)) };
  };
}

/** One fake libvirtd per host with these domains, and the gateway in front of all of them on 127.0.0.1:<any port>. */
export async function startFleet(hosts: Record<string, FleetDomain[]>, config: GatewayOverrides = {}): Promise<Fleet> {
  const fakes = new Map<string, FakeLibvirtd>();
  const ips = new Map<string, string>();
  let gw: TestGateway | null = null;
  const close = async () => {
    await gw?.close();
    for (const fake of fakes.values()) await fake.stop();
  };
  try {
    for (const [host, domains] of Object.entries(hosts)) {
      const fake = await FakeLibvirtd.start();
      fakes.set(host, fake);
      for (const { ipv4, ...d } of domains) {
        fake.addDomain(d);
        if (ipv4) ips.set(`${host}/${d.name}`, ipv4);
      }
      fake.agentHandler = fleetAgent((name) => ips.get(`${host}/${name}`));
    }
    gw = await startTestGateway('qemu:///system', {
      ...config,
      libvirt: { hosts: [...fakes].map(([name, fake]) => ({ name, uri: fake.uri })), ...config.libvirt },
    });
    await gw.app.listen({ host: '127.0.0.1', port: 0 });
    // libvirt's four event subscriptions follow each host's first connection: an event emitted before them reaches nobody.
    for (const [host, fake] of fakes) await waitFor(() => fake.eventCallbackCount() === 4, 5000, `the event subscriptions on ${host}`);
  } catch (err) {
    await close();
    throw err;
  }
  const address = gw.app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const fakeOf = (host: string) => {
    const fake = fakes.get(host);
    if (!fake) throw new Error(`no host ${host}`);
    return fake;
  };
  return {
    url: `http://localhost:${port}`,
    port,
    gw,
    fakes,
    setIpv4(host, domain, ipv4) {
      fakeOf(host);
      ips.set(`${host}/${domain}`, ipv4);
    },
    agentEvent(host, domain, state) {
      const fake = fakeOf(host);
      fake.setAgent(domain, state);
      fake.emitAgentLifecycle(domain, state === 'connected' ? AgentLifecycleState.CONNECTED : AgentLifecycleState.DISCONNECTED, 2);
    },
    close,
  };
}
