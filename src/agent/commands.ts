// Typed guest-agent commands (QEMU's qga/qapi-schema.json): name, kind of deadline, and the zod schema
// of the reply. Replies are loose objects: newer agents add fields, and that must not break us.
import { z } from 'zod';
import type { CommandKind } from '../config/schema.js';

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
const interfaceStats = z.looseObject({
  'rx-bytes': z.number(),
  'rx-packets': z.number(),
  'rx-errs': z.number(),
  'rx-dropped': z.number(),
  'tx-bytes': z.number(),
  'tx-packets': z.number(),
  'tx-errs': z.number(),
  'tx-dropped': z.number(),
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
