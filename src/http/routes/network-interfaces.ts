// GET /domains/{domain}/network-interfaces: the guest's own view of its interfaces and addresses.
import { z } from 'zod';
import { guestNetworkGetInterfaces, type GuestNetworkInterfaces } from '../../agent/commands/network.js';
import { nicAddresses } from '../../agent/guest/interface-addresses.js';
import type { Gateway } from '../../gateway.js';
import { agentQuery } from '../agent-query.js';
import type { DomainRoute } from '../domain-scope.js';
import { exactUint64 } from '../exact-integer.js';
import { domainRefSchema } from '../schemas.js';

// The agent's uint64 counters (GuestNetworkInterfaceStat), exact: a busy interface passes 2^53 bytes.
const counter = () => exactUint64();
const statisticsSchema = z
  .object({
    rxBytes: counter(),
    rxPackets: counter(),
    rxErrors: counter(),
    rxDropped: counter(),
    txBytes: counter(),
    txPackets: counter(),
    txErrors: counter(),
    txDropped: counter(),
  })
  .describe('Counters since the interface came up: exact uint64 JSON integers, which may exceed 2^53');

const networkInterfaceSchema = z.object({
  name: z.string(),
  mac: z.string().nullable().describe('Hardware address, lower case; null when the guest reports none (loopback)'),
  addresses: z.array(
    z.object({
      family: z.enum(['ipv4', 'ipv6']),
      address: z.string(),
      prefix: z.number().int(),
    }),
  ),
  statistics: statisticsSchema.nullable().describe('Counters, when the agent reports them'),
});

const networkInterfacesSchema = z.object({ domain: domainRefSchema, interfaces: z.array(networkInterfaceSchema) }).meta({
  id: 'NetworkInterfaces',
  example: {
    domain: { host: 'local', name: 'guest1', uuid: '8f1c3a52-1b5e-4c1a-9d7e-0a0000000001' },
    interfaces: [
      {
        name: 'eth0',
        mac: '52:54:00:a0:00:01',
        addresses: [{ family: 'ipv4', address: '10.0.2.21', prefix: 24 }],
        statistics: { rxBytes: 1024, rxPackets: 8, rxErrors: 0, rxDropped: 0, txBytes: 2048, txPackets: 9, txErrors: 0, txDropped: 0 },
      },
    ],
  },
});

export function normaliseInterfaces(reply: GuestNetworkInterfaces): z.infer<typeof networkInterfaceSchema>[] {
  return reply.map((nic) => {
    const s = nic.statistics;
    return {
      ...nicAddresses(nic),
      statistics: s
        ? {
            rxBytes: s['rx-bytes'],
            rxPackets: s['rx-packets'],
            rxErrors: s['rx-errs'],
            rxDropped: s['rx-dropped'],
            txBytes: s['tx-bytes'],
            txPackets: s['tx-packets'],
            txErrors: s['tx-errs'],
            txDropped: s['tx-dropped'],
          }
        : null,
    };
  });
}

export function networkInterfaceRoutes({ agent }: Gateway): DomainRoute[] {
  return [
    agentQuery(agent, {
      operationId: 'getNetworkInterfaces',
      path: '/network-interfaces',
      permission: 'read',
      tags: ['network'],
      summary: "The guest's network interfaces and IP addresses",
      command: guestNetworkGetInterfaces,
      details: 'Names normalised: mac, addresses[].family/address/prefix, statistics.',
      response: networkInterfacesSchema,
      problems: [501],
      reshape: (reply) => ({ interfaces: normaliseInterfaces(reply) }),
    }),
  ];
}
