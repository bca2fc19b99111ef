// POST /domains/{domain}/agent/commands: any guest-agent command as JSON, for what the typed resources lack.
// Off unless rawCommands.enabled; commands that could break the agent channel or leave the guest stuck are refused.
import { z } from 'zod';
import { MAX_COMMAND_JSON_BYTES } from '../../agent/core/command-limits.js';
import { MAX_RAW_FILE_READ_BYTES } from '../../agent/commands/files.js';
import { requireIdentity } from '../../auth/identity.js';
import { authorizeRawCommand } from '../../auth/raw-authorization.js';
import type { Gateway } from '../../gateway.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from '../schemas.js';

const rawCommandBody = z
  .strictObject({
    execute: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,63}$/, 'must be a guest-agent command name such as guest-get-users')
      .describe('The agent command'),
    arguments: z.record(z.string(), z.unknown()).optional().describe("The command's arguments, as qga/qapi-schema.json names them"),
  })
  .meta({ id: 'RawAgentCommand', example: { execute: 'guest-get-users' } });

const rawCommandReply = z
  .object({
    domain: domainRefSchema,
    execute: z.string(),
    return: z.unknown().describe('The agent\'s "return" member, as it sent it'),
  })
  .meta({
    id: 'RawAgentCommandResult',
    example: { domain: EXAMPLE_DOMAIN, execute: 'guest-get-users', return: [{ user: 'root', 'login-time': 1764288000.5 }] },
  });

export function rawCommandRoutes({ raw }: Gateway): DomainRoute[] {
  return [
    domainRoute({
      operationId: 'runAgentCommand',
      method: 'POST',
      path: '/agent/commands',
      permission: 'admin',
      tags: ['agent'],
      summary: 'Run any guest-agent command (raw)',
      description:
        'Agent command: the one named in `execute`, with `arguments`. Off unless rawCommands.enabled is true (else 403 ' +
        'command_forbidden). Still gated on what the agent offers (501), queued per domain and under the deadline. ' +
        'Beside `admin`, the token needs the scope of the resource the command stands for (guest-exec: exec; guest-file-open: ' +
        'files:read and/or files:write by its mode; guest-file-read: files:read; guest-file-write and -flush: files:write; ' +
        'guest-set-user-password and guest-ssh-*: accounts; guest-set-time, -vcpus, -memory-blocks: power; guest-fsfreeze-*, ' +
        "guest-fstrim: freeze; guest-get-* and other queries: read), and the identity's policies apply as on the resource " +
        "routes: a guest-file-open's path and mode against policies.files, a guest-exec's program and env against policies.exec. " +
        'A file handle belongs to whoever opened it through this endpoint; one a file transfer holds is refused to all. ' +
        'Else 403 forbidden. ' +
        "Always refused (403 command_forbidden): guest-sync and guest-sync-delimited (the transport's), " +
        'guest-exec-status (its reply can break the agent channel; use GET /domains/{domain}/exec/{pid}), ' +
        'guest-fsfreeze-freeze(-list) (use the freeze resource), commands without a success reply (guest-shutdown, ' +
        `guest-suspend-*), guest-file-read with a count over ${MAX_RAW_FILE_READ_BYTES}, and whatever rawCommands.deny lists. ` +
        `A command over ${MAX_COMMAND_JSON_BYTES} bytes of JSON: 413 (qemu-ga 7.2 misreads larger ones). ` +
        "Arguments the agent's schema refuses (missing, unexpected, of the wrong type, " +
        'such as an argument only newer agents take): 400 invalid_request with agentDesc. Other agent errors: ' +
        '502 agent_error with agentClass and agentDesc. Integers in the reply are passed on exactly, ' +
        '64-bit ones included (JSON integers that may exceed 2^53).',
      body: rawCommandBody,
      response: { 200: { description: "The agent's reply", schema: rawCommandReply } },
      problems: [403, 413, 501],
      // A disabled endpoint, or a command refused whatever the domain, says so before the domain is looked up.
      check: (request) => raw.check(request.body),
      answer: async (request) => {
        const identity = requireIdentity(request.identity);
        authorizeRawCommand(identity, request.body, (handle) => raw.handleHolder(request.domain, handle));
        request.log.info({ execute: request.body.execute }, 'raw agent command');
        const result = await raw.run(request.domain, request.body, request.agentOpts, identity.name);
        return { execute: request.body.execute, return: result };
      },
    }),
  ];
}
