// File-system freeze (status, freeze with a deadline, thaw) and fstrim of one guest.
import { z } from 'zod';
import type { HeldFreeze } from '../../agent/freeze/freeze-registry.js';
import type { Gateway } from '../../gateway.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { exactUint64 } from '../exact-integer.js';
import { domainRefSchema } from '../schemas.js';

const EXAMPLE_DOMAIN = { host: 'local', name: 'guest1', uuid: '8f1c3a52-1b5e-4c1a-9d7e-0a0000000001' };

const heldSchema = z
  .object({
    frozenAt: z.iso.datetime(),
    autoThawAt: z.iso.datetime().describe('When the gateway thaws on its own, client or no client'),
    mountpoints: z.array(z.string()).nullable().describe('null: every freezable file system'),
    blocking: z.boolean().describe('true while other commands get 409 (the agent reported frozen)'),
  })
  .nullable()
  .describe('The freeze the gateway holds on this domain, if any');

const freezeStatusSchema = z
  .object({
    domain: domainRefSchema,
    status: z.string().describe("guest-fsfreeze-status: 'thawed' or 'frozen'"),
    heldByGateway: heldSchema,
  })
  .meta({ id: 'FsFreezeStatus', example: { domain: EXAMPLE_DOMAIN, status: 'thawed', heldByGateway: null } });

const freezeResultSchema = z
  .object({
    domain: domainRefSchema,
    frozenFileSystems: z
      .number()
      .int()
      .describe('What guest-fsfreeze-freeze(-list) answered; 0 when nothing is freezable (an initramfs root)'),
    status: z.string().describe("guest-fsfreeze-status right after: 'frozen', or 'thawed' when nothing was freezable"),
    heldByGateway: heldSchema,
  })
  .meta({
    id: 'FsFreezeResult',
    example: {
      domain: EXAMPLE_DOMAIN,
      frozenFileSystems: 2,
      status: 'frozen',
      heldByGateway: { frozenAt: '2026-11-28T00:00:00.000Z', autoThawAt: '2026-11-28T00:00:30.000Z', mountpoints: null, blocking: true },
    },
  });

const thawResultSchema = z
  .object({ domain: domainRefSchema, thawedFileSystems: z.number().int(), status: z.literal('thawed') })
  .meta({ id: 'FsThawResult', example: { domain: EXAMPLE_DOMAIN, thawedFileSystems: 2, status: 'thawed' } });

const trimResultSchema = z
  .object({
    domain: domainRefSchema,
    paths: z.array(
      z.object({
        path: z.string(),
        trimmedBytes: exactUint64('Bytes trimmed; null when the guest kernel does not say').nullable(),
        minimumBytes: exactUint64('The minimum the guest kernel used').nullable(),
        error: z.string().nullable().describe('Why this file system was not trimmed'),
      }),
    ),
  })
  .meta({
    id: 'FsTrimResult',
    example: { domain: EXAMPLE_DOMAIN, paths: [{ path: '/', trimmedBytes: 1048576, minimumBytes: 0, error: null }] },
  });

function heldBody(held: HeldFreeze | undefined) {
  if (!held) return null;
  return {
    frozenAt: held.frozenAt.toISOString(),
    autoThawAt: held.thawAt.toISOString(),
    mountpoints: held.mountpoints,
    blocking: held.frozen,
  };
}

export function freezeRoutes({ config, freeze }: Gateway): DomainRoute[] {
  const maxThawAfterMs = config.freeze.maxTimeoutMs;
  const freezeBody = z
    .object({
      mountpoints: z
        .array(
          z
            .string()
            .min(1)
            .max(4096)
            .startsWith('/')
            .regex(/^[^\u0000]*$/, 'must not contain NUL'),
        )
        .min(1)
        .max(256)
        .optional()
        .describe('Mount points to freeze (guest-fsfreeze-freeze-list); absent: every freezable file system'),
      thawAfterMs: z
        .number()
        .int()
        .min(1)
        .max(maxThawAfterMs)
        .optional()
        .describe(
          `The freeze's deadline: the gateway thaws on its own when it passes (default ${config.freeze.defaultTimeoutMs}, at most ${maxThawAfterMs})`,
        ),
    })
    .meta({ id: 'FsFreezeRequest', example: { mountpoints: ['/var/lib/db'], thawAfterMs: 30000 } });
  const trimBody = z
    .object({
      minimumBytes: z
        .number()
        .int()
        .min(0)
        .max(Number.MAX_SAFE_INTEGER)
        .optional()
        .describe('Free ranges smaller than this are not trimmed (guest-fstrim minimum)'),
    })
    .meta({ id: 'FsTrimRequest', example: { minimumBytes: 65536 } });

  return [
    domainRoute({
      operationId: 'getFreezeStatus',
      method: 'GET',
      path: '/fsfreeze',
      permission: 'read',
      tags: ['fsfreeze'],
      summary: 'Are the guest file systems frozen?',
      description: 'Agent command: guest-fsfreeze-status. Also says whether the gateway holds a freeze and when it thaws on its own.',
      response: {
        200: { description: 'Whether the file systems are frozen, and the freeze the gateway holds', schema: freezeStatusSchema },
      },
      problems: [501],
      answer: async ({ domain, agentOpts }) => {
        const { status, held } = await freeze.status(domain, agentOpts);
        return { status, heldByGateway: heldBody(held) };
      },
    }),

    domainRoute({
      operationId: 'freezeFilesystems',
      method: 'POST',
      path: '/fsfreeze',
      permission: 'freeze',
      tags: ['fsfreeze'],
      summary: 'Freeze the guest file systems, with a deadline',
      description:
        'Agent commands: guest-fsfreeze-freeze, or guest-fsfreeze-freeze-list with mountpoints; then guest-fsfreeze-status. ' +
        'The gateway thaws (guest-fsfreeze-thaw) by itself after thawAfterMs, when it shuts down, and never leaves a freeze behind. ' +
        'While frozen, other commands to the domain get 409 state_conflict ' +
        '(only guest-ping, guest-info, guest-fsfreeze-status and -thaw work). 409 when the gateway already holds a freeze.',
      body: freezeBody.nullish(),
      response: { 200: { description: 'The file systems frozen, and when the gateway thaws them', schema: freezeResultSchema } },
      problems: [501],
      answer: async (request) => {
        const body = request.body ?? {};
        const thawAfterMs = body.thawAfterMs ?? freeze.defaultTimeoutMs;
        const result = await freeze.freeze(request.domain, body.mountpoints ?? null, thawAfterMs, request.agentOpts);
        return { frozenFileSystems: result.count, status: result.status, heldByGateway: heldBody(result.held) };
      },
    }),

    domainRoute({
      operationId: 'thawFilesystems',
      method: 'DELETE',
      path: '/fsfreeze',
      permission: 'freeze',
      tags: ['fsfreeze'],
      summary: 'Thaw the guest file systems',
      description: 'Agent command: guest-fsfreeze-thaw. Thaws whoever froze; harmless when nothing is frozen (0).',
      response: { 200: { description: 'The file systems thawed', schema: thawResultSchema } },
      problems: [501],
      answer: async ({ domain, agentOpts }) => ({ thawedFileSystems: await freeze.thaw(domain, agentOpts), status: 'thawed' as const }),
    }),

    domainRoute({
      operationId: 'trimFilesystems',
      method: 'POST',
      path: '/fstrim',
      // Like a freeze it acts on whole file systems and their I/O, and reads or writes no data: 'freeze'.
      permission: 'freeze',
      tags: ['fsfreeze'],
      summary: 'Discard unused blocks of the guest file systems',
      description: 'Agent command: guest-fstrim. One result per mounted file system; those that cannot be trimmed carry an error.',
      body: trimBody.nullish(),
      response: { 200: { description: 'What each file system trimmed', schema: trimResultSchema } },
      problems: [501],
      answer: async (request) => ({ paths: await freeze.fstrim(request.domain, request.body?.minimumBytes, request.agentOpts) }),
    }),
  ];
}
