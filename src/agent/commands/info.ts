// qga/qapi-schema.json's first commands: the channel's own (guest-sync-delimited, guest-sync), guest-ping, and
// guest-info, which says what the agent offers. Every one of them runs while the guest is frozen, and none is
// gated on guest-info: they are how the gateway learns the rest.
import { z } from 'zod';
import { command, known, noArgs } from './define.js';

const TRANSPORT_OWN = 'the transport (libvirt) runs the guest-sync handshake itself; a stray one would confuse the channel';

/** Sent by the transports only (src/agent/transports/), never typed: the reply follows a 0xFF the JSON reader does not see. */
export const guestSyncDelimited = known('guest-sync-delimited', { ungated: true, allowedWhileFrozen: true, rawRefused: TRANSPORT_OWN });
export const guestSync = known('guest-sync', { ungated: true, allowedWhileFrozen: true, rawRefused: TRANSPORT_OWN });

export const guestPing = command('guest-ping', 'quick', noArgs, z.looseObject({}), {
  ungated: true,
  allowedWhileFrozen: true,
  rawScope: 'read',
});

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
export const guestInfo = command('guest-info', 'quick', noArgs, guestInfoReply, {
  ungated: true,
  allowedWhileFrozen: true,
  rawScope: 'read',
});
