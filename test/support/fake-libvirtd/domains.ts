// The fake libvirtd's domain model: how a domain is made, found (by name, by UUID, by the remote_nonnull_domain of
// a call), listed with CONNECT_LIST_ALL_DOMAINS' filters, put on the wire, and described as live XML.
import { randomUUID } from 'node:crypto';
import { VirErrorCode, uuidFromString, uuidToString, type WireDomain } from '../../../src/libvirt/protocol.js';
import { DomainState, FakeRpcError, type FakeDomain } from './types.js';

/** virConnectListAllDomainsFlags: ACTIVE and INACTIVE. */
const LIST_ACTIVE = 1;
const LIST_INACTIVE = 2;

export function isActive(state: number): boolean {
  return state !== DomainState.SHUTOFF && state !== DomainState.NOSTATE && state !== DomainState.CRASHED;
}

/** A new domain: defaults running, agent connected, random UUID, a fresh id (from nextId) when running. */
export function newDomain(d: Partial<FakeDomain> & { name: string }, nextId: () => number): FakeDomain {
  const state = d.state ?? DomainState.RUNNING;
  return {
    name: d.name,
    uuid: d.uuid ?? randomUUID(),
    id: d.id ?? (isActive(state) ? nextId() : -1),
    state,
    reason: d.reason ?? 1,
    agent: d.agent ?? 'connected',
    ...(d.metadata === undefined ? {} : { metadata: d.metadata }),
  };
}

export function toWire(d: FakeDomain): WireDomain {
  return { name: d.name, uuid: uuidFromString(d.uuid), id: d.id };
}

/** DOMAIN_LOOKUP_BY_NAME: 42 "Domain not found: no domain with matching name 'x'" when there is none. */
export function byName(domains: readonly FakeDomain[], name: string): FakeDomain {
  const d = domains.find((x) => x.name === name);
  if (!d) throw new FakeRpcError(VirErrorCode.NO_DOMAIN, `Domain not found: no domain with matching name '${name}'`);
  return d;
}

/** DOMAIN_LOOKUP_BY_UUID. */
export function byUuid(domains: readonly FakeDomain[], uuid: Buffer): FakeDomain {
  const s = uuidToString(uuid);
  const d = domains.find((x) => x.uuid.toLowerCase() === s);
  if (!d) throw new FakeRpcError(VirErrorCode.NO_DOMAIN, `Domain not found: no domain with matching uuid '${s}'`);
  return d;
}

/** The domain a remote_nonnull_domain names, found by UUID as libvirt's drivers do. */
export function byWire(domains: readonly FakeDomain[], w: WireDomain): FakeDomain {
  const s = uuidToString(w.uuid);
  const d = domains.find((x) => x.uuid.toLowerCase() === s);
  if (!d) throw new FakeRpcError(VirErrorCode.NO_DOMAIN, `Domain not found: no domain with matching uuid '${s}' (${w.name})`);
  return d;
}

/** CONNECT_LIST_ALL_DOMAINS' ACTIVE / INACTIVE filter: neither or both = every domain. */
export function listed(domains: readonly FakeDomain[], flags: number): FakeDomain[] {
  const want = flags & (LIST_ACTIVE | LIST_INACTIVE);
  if (want === 0 || want === (LIST_ACTIVE | LIST_INACTIVE)) return [...domains];
  return domains.filter((d) => (want === LIST_ACTIVE) === isActive(d.state));
}

function xmlEscape(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** A minimal domain XML in the shape of libvirt's live XML (id and channel state only while running). */
export function domainXml(d: FakeDomain): string {
  const running = isActive(d.state);
  const lines = [
    running ? `<domain type='kvm' id='${d.id}'>` : `<domain type='kvm'>`,
    `  <name>${xmlEscape(d.name)}</name>`,
    `  <uuid>${d.uuid.toLowerCase()}</uuid>`,
    // Where libvirt puts it: after the name, UUID, title and description, before everything else.
    ...(d.metadata === undefined ? [] : [`  <metadata>`, d.metadata, `  </metadata>`]),
    `  <memory unit='KiB'>262144</memory>`,
    `  <vcpu placement='static'>1</vcpu>`,
    `  <os>`,
    `    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>`,
    `  </os>`,
    `  <devices>`,
    `    <emulator>/usr/bin/qemu-system-x86_64</emulator>`,
  ];
  if (d.agent !== 'none') {
    const state = running ? ` state='${d.agent}'` : '';
    lines.push(
      `    <channel type='unix'>`,
      running
        ? `      <source mode='bind' path='/run/libvirt/qemu/channel/${d.id}-${xmlEscape(d.name)}/org.qemu.guest_agent.0'/>`
        : `      <source mode='bind'/>`,
      `      <target type='virtio' name='org.qemu.guest_agent.0'${state}/>`,
      `      <address type='virtio-serial' controller='0' bus='0' port='1'/>`,
      `    </channel>`,
    );
  }
  lines.push(`  </devices>`, `</domain>`, '');
  return lines.join('\n');
}
