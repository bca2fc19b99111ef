// A guest's interfaces reduced to what fleet callers want, the same for GET /addresses and the `addresses` events:
// name, hardware address and IP addresses, without loopback and without counters (which change on every read).
import type { GuestNetworkInterfaces } from '../commands/network.js';

export interface InterfaceAddresses {
  name: string;
  /** Lower case; null when the guest reports none. */
  mac: string | null;
  addresses: { family: 'ipv4' | 'ipv6'; address: string; prefix: number }[];
}

const isLoopback = (nic: InterfaceAddresses) =>
  nic.name === 'lo' || (nic.addresses.length > 0 && nic.addresses.every((a) => a.address === '::1' || a.address.startsWith('127.')));

/** One interface of the agent's reply, named as the gateway names it (GET /network-interfaces adds its counters). */
export function nicAddresses(nic: GuestNetworkInterfaces[number]): InterfaceAddresses {
  return {
    name: nic.name,
    mac: nic['hardware-address'] ? nic['hardware-address'].toLowerCase() : null,
    addresses: (nic['ip-addresses'] ?? []).map((a) => ({ family: a['ip-address-type'], address: a['ip-address'], prefix: a.prefix })),
  };
}

export function interfaceAddresses(reply: GuestNetworkInterfaces): InterfaceAddresses[] {
  return reply.map(nicAddresses).filter((nic) => !isLoopback(nic));
}
