// The libvirt calls the gateway makes, typed. Everything above this file speaks in these terms, never in packets.
import type { DomainRef } from '../domains/vocabulary.js';
import { Qemu, Remote } from './procedures.js';
import {
  RebootFlag,
  ShutdownFlag,
  domainStateName,
  uuidFromString,
  uuidToString,
  type DomainStateName,
  type WireDomain,
} from './protocol.js';
import type { LibvirtPool } from './pool.js';

export function toDomainRef(d: WireDomain, host: string): DomainRef {
  return { host, name: d.name, uuid: uuidToString(d.uuid), id: d.id };
}

function toWire(d: DomainRef): WireDomain {
  return { name: d.name, uuid: uuidFromString(d.uuid), id: d.id };
}

export class LibvirtClient {
  constructor(
    readonly pool: LibvirtPool,
    /** Stamped on every DomainRef this client returns. */
    readonly host = 'local',
  ) {}

  async listAllDomains(signal?: AbortSignal): Promise<DomainRef[]> {
    const ret = await this.pool.call(Remote.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 }, signal);
    return ret.domains.map((d) => toDomainRef(d, this.host));
  }

  async lookupByName(name: string, signal?: AbortSignal): Promise<DomainRef> {
    const ret = await this.pool.call(Remote.DOMAIN_LOOKUP_BY_NAME, { name }, signal);
    return toDomainRef(ret.dom, this.host);
  }

  async lookupByUuid(uuid: string, signal?: AbortSignal): Promise<DomainRef> {
    const ret = await this.pool.call(Remote.DOMAIN_LOOKUP_BY_UUID, { uuid: uuidFromString(uuid) }, signal);
    return toDomainRef(ret.dom, this.host);
  }

  async getState(dom: DomainRef, signal?: AbortSignal): Promise<{ state: DomainStateName; reason: number }> {
    const ret = await this.pool.call(Remote.DOMAIN_GET_STATE, { dom: toWire(dom), flags: 0 }, signal);
    return { state: domainStateName(ret.state), reason: ret.reason };
  }

  async getXmlDesc(dom: DomainRef, signal?: AbortSignal): Promise<string> {
    const ret = await this.pool.call(Remote.DOMAIN_GET_XML_DESC, { dom: toWire(dom), flags: 0 }, signal);
    return ret.xml;
  }

  /**
   * virDomainQemuAgentCommand: sends one JSON command to the guest agent and answers its JSON reply.
   * timeoutSeconds: -2 blocks, -1 libvirt's default, 0 does not wait, N seconds.
   */
  async agentCommand(dom: DomainRef, command: string, timeoutSeconds: number, signal?: AbortSignal): Promise<string | null> {
    const ret = await this.pool.call(
      Qemu.DOMAIN_AGENT_COMMAND,
      { dom: toWire(dom), cmd: command, timeout: timeoutSeconds, flags: 0 },
      signal,
    );
    return ret.result;
  }

  /** virDomainShutdownFlags(VIR_DOMAIN_SHUTDOWN_GUEST_AGENT): libvirt sends guest-shutdown and knows it gets no reply. */
  async shutdownViaAgent(dom: DomainRef, signal?: AbortSignal): Promise<void> {
    await this.pool.call(Remote.DOMAIN_SHUTDOWN_FLAGS, { dom: toWire(dom), flags: ShutdownFlag.GUEST_AGENT }, signal);
  }

  /** virDomainReboot(VIR_DOMAIN_REBOOT_GUEST_AGENT): guest-shutdown {"mode":"reboot"}, no reply awaited. */
  async rebootViaAgent(dom: DomainRef, signal?: AbortSignal): Promise<void> {
    await this.pool.call(Remote.DOMAIN_REBOOT, { dom: toWire(dom), flags: RebootFlag.GUEST_AGENT }, signal);
  }

  /** virDomainPMSuspendForDuration: libvirt uses the agent's guest-suspend-ram/disk/hybrid (target: SuspendTarget). */
  async pmSuspend(dom: DomainRef, target: number, signal?: AbortSignal): Promise<void> {
    await this.pool.call(Remote.DOMAIN_PM_SUSPEND_FOR_DURATION, { dom: toWire(dom), target, duration: 0n, flags: 0 }, signal);
  }
}
