// Guest accounts: PUT /domains/{domain}/users/{user}/password (guest-set-user-password) and the user's SSH
// authorized keys, GET/POST/DELETE /domains/{domain}/users/{user}/ssh-keys (guest-ssh-*-authorized-keys).
// The password is never logged nor echoed: it leaves the gateway only base64-encoded inside the agent command.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AccountService } from '../../agent/guest/accounts.js';
import { sshKeyProblem } from '../../agent/guest/ssh-keys.js';
import type { Gateway } from '../../gateway.js';
import { agentRouteErrors, agentRouteSchema, agentTarget } from '../agent-route.js';
import { problemResponses } from '../problem.js';
import { domainRefSchema, domainRef } from '../schemas.js';
import type { DomainRef } from '../../domains/vocabulary.js';

const DOMAIN_EXAMPLE = { host: 'local', name: 'guest1', uuid: '3b5a8f0e-1c2d-4e6f-8a9b-0c1d2e3f4a01' };
const KEY_EXAMPLE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILs6z9QV1ve7cx4wYGtWe06S28D4feUoGDXKiZh6/yKq alice@laptop';

const userName = z
  .string()
  .min(1)
  .max(256)
  // Neither Linux nor Windows account names hold these; "/" would also escape the home directory lookup.
  .regex(/^[^\u0000-\u001f\u007f/:\\]+$/, 'must not contain control characters, "/", "\\" or ":"')
  .describe('The guest user name');

const sshKeyLine = z
  .string()
  .max(16 * 1024)
  .superRefine((line, ctx) => {
    const problem = sshKeyProblem(line);
    if (problem) ctx.addIssue({ code: 'custom', message: `not an OpenSSH public key: ${problem}` });
  })
  // Sent as the agent will store it, so that removing the same line later matches.
  .transform((line) => line.trim())
  .describe('One OpenSSH public key line: "type base64-key [comment]", without options');

const passwordBody = z
  .strictObject({
    password: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[^\r\n\0]*$/, 'must not contain CR, LF or NUL')
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
    example: { domain: DOMAIN_EXAMPLE, user: 'root', keys: [{ line: KEY_EXAMPLE, type: 'ssh-ed25519', comment: 'alice@laptop' }] },
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

export function accountRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  const accounts = new AccountService(gateway.agent);
  const base = agentRouteSchema(gateway);
  const params = base.params.extend({ user: userName });
  const errors = { ...agentRouteErrors(), ...problemResponses(501) };

  const keysAnswer = async (dom: DomainRef, user: string, opts: Parameters<typeof accounts.getKeys>[2]) => ({
    domain: domainRef(dom),
    user,
    keys: await accounts.getKeys(dom, user, opts),
  });

  return async (app) => {
    app.put(
      '/domains/:domain/users/:user/password',
      {
        config: { permission: 'accounts' },
        schema: {
          tags: ['accounts'],
          summary: "Set a guest user's password",
          description:
            "Agent command: guest-set-user-password (the gateway base64-encodes the password). Answers 204. On Linux the agent runs chpasswd: a guest without it answers 501 guest_program_missing. The password is never logged nor echoed.",
          params,
          querystring: base.querystring,
          body: passwordBody,
          response: { 204: z.null().describe('Password set'), ...errors },
        },
      },
      async (request, reply) => {
        const { dom, opts } = await agentTarget(gateway, request);
        await accounts.setPassword(dom, request.params.user, request.body.password, request.body.crypted, opts);
        request.log.info({ user: request.params.user, crypted: request.body.crypted }, 'guest user password set');
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/domains/:domain/users/:user/ssh-keys',
      {
        config: { permission: 'accounts' },
        schema: {
          tags: ['accounts'],
          summary: "A guest user's SSH authorized keys",
          description: "Agent command: guest-ssh-get-authorized-keys. A user without ~/.ssh/authorized_keys has no keys (empty list); an unknown user: 404 user_not_found.",
          params,
          querystring: base.querystring,
          response: { 200: keysSchema, ...errors },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        return keysAnswer(dom, request.params.user, opts);
      },
    );

    app.post(
      '/domains/:domain/users/:user/ssh-keys',
      {
        config: { permission: 'accounts' },
        schema: {
          tags: ['accounts'],
          summary: "Add SSH authorized keys for a guest user (or replace them all)",
          description:
            'Agent commands: guest-ssh-add-authorized-keys (with reset when asked), then guest-ssh-get-authorized-keys for the answer. Keys already there are not added twice. Malformed key lines: 400.',
          params,
          querystring: base.querystring,
          body: addKeysBody,
          response: { 200: keysSchema, ...errors },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const { keys, reset } = request.body;
        await accounts.addKeys(dom, request.params.user, keys, reset, opts);
        request.log.info({ user: request.params.user, added: keys.length, reset }, 'guest ssh keys added');
        return keysAnswer(dom, request.params.user, opts);
      },
    );

    app.delete(
      '/domains/:domain/users/:user/ssh-keys',
      {
        config: { permission: 'accounts' },
        schema: {
          tags: ['accounts'],
          summary: 'Remove SSH authorized keys of a guest user',
          description:
            'Agent commands: guest-ssh-remove-authorized-keys, then guest-ssh-get-authorized-keys for the answer. The body (JSON) lists the key lines to remove; keys not there are ignored.',
          params,
          querystring: base.querystring,
          body: removeKeysBody,
          response: { 200: keysSchema, ...errors },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        await accounts.removeKeys(dom, request.params.user, request.body.keys, opts);
        request.log.info({ user: request.params.user, removed: request.body.keys.length }, 'guest ssh keys removed');
        return keysAnswer(dom, request.params.user, opts);
      },
    );
  };
}
