// The guest's network as its agent sees it (qga/qapi-schema.json): interfaces with their addresses and counters,
// and the routing table. Read-only.
import { z } from 'zod';
import { agentInt64, agentUint64 } from './reply-integers.js';
import { command, noArgs } from './define.js';

const ipAddress = z.looseObject({
  'ip-address-type': z.enum(['ipv4', 'ipv6']),
  'ip-address': z.string(),
  prefix: z.number().int(),
});
// GuestNetworkInterfaceStat (since 2.11): uint64 counters, which a busy interface takes past 2^53 bytes.
const interfaceStats = z.looseObject({
  'rx-bytes': agentUint64(),
  'rx-packets': agentUint64(),
  'rx-errs': agentUint64(),
  'rx-dropped': agentUint64(),
  'tx-bytes': agentUint64(),
  'tx-packets': agentUint64(),
  'tx-errs': agentUint64(),
  'tx-dropped': agentUint64(),
});
export const guestNetworkInterfacesReply = z.array(
  z.looseObject({
    name: z.string(),
    'hardware-address': z.string().optional(),
    'ip-addresses': z.array(ipAddress).optional(),
    statistics: interfaceStats.optional(),
  }),
);
export type GuestNetworkInterfaces = z.infer<typeof guestNetworkInterfacesReply>;
export const guestNetworkGetInterfaces = command('guest-network-get-interfaces', 'query', noArgs, guestNetworkInterfacesReply, {
  rawScope: 'read',
});

/**
 * Since qemu-ga 9.1 (Linux), 11.0 (Windows, without flags, refcnt, use, window, mtu, irtt). Every number is the
 * kernel's u32, but the agent sends them as it read them into a C int: negative (-1 for an IPv6 metric of
 * 0xffffffff) or, for IPv6 flags (uint64 in the schema), sign-extended to 64 bits (18446744071564165121 for
 * 0x80200001, recorded from qemu-ga 10.0.13): any integer is accepted here, exactly; kernelU32() undoes both.
 */
const routeNumber = () => agentInt64();
export const guestNetworkGetRouteReply = z.array(
  z.looseObject({
    iface: z.string(),
    destination: z.string(),
    metric: routeNumber(),
    gateway: z.string().optional(),
    mask: z.string().optional(),
    irtt: routeNumber().optional(),
    flags: routeNumber().optional(),
    refcnt: routeNumber().optional(),
    use: routeNumber().optional(),
    window: routeNumber().optional(),
    mtu: routeNumber().optional(),
    desprefixlen: z.string().optional(),
    source: z.string().optional(),
    srcprefixlen: z.string().optional(),
    nexthop: z.string().optional(),
    version: z.number().int(),
  }),
);
export const guestNetworkGetRoute = command('guest-network-get-route', 'query', noArgs, guestNetworkGetRouteReply, { rawScope: 'read' });
