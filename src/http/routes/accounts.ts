// Guest accounts: PUT /domains/{domain}/users/{user}/password (guest-set-user-password) and the user's SSH
// authorized keys, GET/POST/DELETE /domains/{domain}/users/{user}/ssh-keys (guest-ssh-*-authorized-keys).
// The password is never logged nor echoed: it leaves the gateway only base64-encoded inside the agent command.
import { z } from 'zod';
import { guestUserName, PASSWORD_LINE, PASSWORD_LINE_MESSAGE, sshKeyLineChecked } from '../../agent/guest/account-rules.js';
import type { Gateway } from '../../gateway.js';
import { domainRoute, type DomainRequest, type DomainRoute } from '../domain-scope.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from '../schemas.js';
const KEY_EXAMPLE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILs6z9QV1ve7cx4wYGtWe06S28D4feUoGDXKiZh6/yKq alice@laptop';

const sshKeyLine = sshKeyLineChecked
  // Sent as the agent will store it, so that removing the same line later matches.
  .transform((line) => line.trim())
  .describe('One OpenSSH public key line: "type base64-key [comment]", without options');

const passwordBody = z
  .strictObject({
    password: z
      .string()
      .min(1)
      .max(1024)
      .regex(PASSWORD_LINE, PASSWORD_LINE_MESSAGE)
      .describe('The new password in plain text, or a crypt(3) hash when crypted is true'),
    crypted: z.boolean().default(false).describe('password is already a crypt(3) hash ($6$...)'),
  })
  .meta({ id: 'SetUserPassword', example: { password: 'correct horse battery staple', crypted: false } });

const keysSchema = z
  .object({
    domain: domainRefSchema,
    user: z.string(),
    keys: z.array(
      z.object({
        line: z.string().describe('The authorized_keys line, as it is in the file'),
        type: z.string().nullable().describe('The key type; null when the line carries options or is not a plain key'),
        comment: z.string().nullable(),
      }),
    ),
  })
  .meta({
    id: 'SshAuthorizedKeys',
    example: { domain: EXAMPLE_DOMAIN, user: 'root', keys: [{ line: KEY_EXAMPLE, type: 'ssh-ed25519', comment: 'alice@laptop' }] },
  });

const addKeysBody = z
  .strictObject({
    keys: z.array(sshKeyLine).max(1000),
    reset: z.boolean().default(false).describe('Replace every key the user has with these (an empty list then removes them all)'),
  })
  .refine((b) => b.reset || b.keys.length > 0, { message: 'keys must not be empty unless reset is true', path: ['keys'] })
  .meta({ id: 'SshKeysAdd', example: { keys: [KEY_EXAMPLE], reset: false } });

const removeKeysBody = z
  .strictObject({ keys: z.array(sshKeyLine).min(1).max(1000) })
  .meta({ id: 'SshKeysRemove', example: { keys: [KEY_EXAMPLE] } });

export function accountRoutes({ accounts }: Gateway): DomainRoute[] {
  const params = z.object({ user: guestUserName });
  const keysOf = async (request: DomainRequest<typeof params>) => ({
    user: request.params.user,
    keys: await accounts.getKeys(request.domain, request.params.user, request.agentOpts),
  });

  return [
    domainRoute({
      operationId: 'setUserPassword',
      method: 'PUT',
      path: '/users/:user/password',
      permission: 'accounts',
      tags: ['accounts'],
      summary: "Set a guest user's password",
      description:
        'Agent command: guest-set-user-password (the gateway base64-encodes the password). Answers 204. ' +
        'On Linux the agent runs chpasswd: a guest without it answers 501 guest_program_missing. ' +
        'The password is never logged nor echoed.',
      params,
      body: passwordBody,
      response: { 204: { description: 'Password set', schema: z.null() } },
      problems: [501],
      handler: async (request, reply) => {
        await accounts.setPassword(request.domain, request.params.user, request.body.password, request.body.crypted, request.agentOpts);
        request.log.info({ user: request.params.user, crypted: request.body.crypted }, 'guest user password set');
        return reply.code(204).send(null);
      },
    }),

    domainRoute({
      operationId: 'listSshKeys',
      method: 'GET',
      path: '/users/:user/ssh-keys',
      permission: 'accounts',
      tags: ['accounts'],
      summary: "A guest user's SSH authorized keys",
      description:
        'Agent command: guest-ssh-get-authorized-keys. A user without ~/.ssh/authorized_keys has no keys (empty list); an unknown user: 404 user_not_found.',
      params,
      response: { 200: { description: "The user's authorized keys", schema: keysSchema } },
      problems: [501],
      answer: keysOf,
    }),

    domainRoute({
      operationId: 'addSshKeys',
      method: 'POST',
      path: '/users/:user/ssh-keys',
      permission: 'accounts',
      tags: ['accounts'],
      summary: 'Add SSH authorized keys for a guest user (or replace them all)',
      description:
        'Agent commands: guest-ssh-add-authorized-keys (with reset when asked), then guest-ssh-get-authorized-keys for the ' +
        'answer. Keys already there are not added twice. Malformed key lines: 400.',
      params,
      body: addKeysBody,
      response: { 200: { description: "The user's authorized keys once added", schema: keysSchema } },
      problems: [501],
      answer: async (request) => {
        const { keys, reset } = request.body;
        await accounts.addKeys(request.domain, request.params.user, keys, reset, request.agentOpts);
        request.log.info({ user: request.params.user, added: keys.length, reset }, 'guest ssh keys added');
        return keysOf(request);
      },
    }),

    domainRoute({
      operationId: 'removeSshKeys',
      method: 'DELETE',
      path: '/users/:user/ssh-keys',
      permission: 'accounts',
      tags: ['accounts'],
      summary: 'Remove SSH authorized keys of a guest user',
      description:
        'Agent commands: guest-ssh-remove-authorized-keys, then guest-ssh-get-authorized-keys for the answer. The body (JSON) ' +
        'lists the key lines to remove; keys not there are ignored.',
      params,
      body: removeKeysBody,
      response: { 200: { description: "The user's authorized keys once removed", schema: keysSchema } },
      problems: [501],
      answer: async (request) => {
        await accounts.removeKeys(request.domain, request.params.user, request.body.keys, request.agentOpts);
        request.log.info({ user: request.params.user, removed: request.body.keys.length }, 'guest ssh keys removed');
        return keysOf(request);
      },
    }),
  ];
}
