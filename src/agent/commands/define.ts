// Typed guest-agent commands (QEMU's qga/qapi-schema.json): name, kind of deadline, and the zod schema
// of the reply. Replies are loose objects: newer agents add fields, and that must not break us.
import { z } from 'zod';
import type { CommandKind } from '../../config/schema.js';
import { agentUint64 } from '../core/reply-integers.js';

export interface AgentCommand<Args, Reply> {
  execute: string;
  kind: CommandKind;
  args: z.ZodType<Args>;
  reply: z.ZodType<Reply>;
}

export function command<Args, Reply>(execute: string, kind: CommandKind, args: z.ZodType<Args>, reply: z.ZodType<Reply>): AgentCommand<Args, Reply> {
  return { execute, kind, args, reply };
}

export const noArgs = z.undefined();

export const guestPing = command('guest-ping', 'quick', noArgs, z.looseObject({}));

export const guestInfoReply = z.looseObject({
  version: z.string(),
  supported_commands: z.array(
    z.looseObject({
      name: z.string(),
      enabled: z.boolean(),
      'success-response': z.boolean(),
    }),
  ),
});
export const guestInfo = command('guest-info', 'quick', noArgs, guestInfoReply);

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
export const guestNetworkGetInterfaces = command('guest-network-get-interfaces', 'query', noArgs, guestNetworkInterfacesReply);
