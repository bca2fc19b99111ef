// Guest accounts (qga/qapi-schema.json): a user's password and SSH authorized keys (src/agent/guest/accounts.ts).
// The password travels base64-encoded in the command only.
import { z } from 'zod';
import { command } from './define.js';

export const guestSetUserPassword = command(
  'guest-set-user-password',
  'query',
  z.object({ username: z.string(), password: z.string(), crypted: z.boolean() }),
  z.looseObject({}),
  { rawScope: 'accounts' },
);
export const guestSshGetAuthorizedKeys = command(
  'guest-ssh-get-authorized-keys',
  'query',
  z.object({ username: z.string() }),
  z.looseObject({ keys: z.array(z.string()) }),
  { rawScope: 'accounts' },
);
export const guestSshAddAuthorizedKeys = command(
  'guest-ssh-add-authorized-keys',
  'query',
  z.object({ username: z.string(), keys: z.array(z.string()), reset: z.boolean().optional() }),
  z.looseObject({}),
  { rawScope: 'accounts' },
);
export const guestSshRemoveAuthorizedKeys = command(
  'guest-ssh-remove-authorized-keys',
  'query',
  z.object({ username: z.string(), keys: z.array(z.string()) }),
  z.looseObject({}),
  { rawScope: 'accounts' },
);
