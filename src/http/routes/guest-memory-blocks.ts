// The guest's memory blocks (the units of memory hot(un)plug): list, block size, online/offline.
import { z } from 'zod';
import { guestGetMemoryBlockInfo, MEMORY_BLOCK_RESULTS } from '../../agent/commands/system.js';
import { listMemoryBlocks, setMemoryBlocks } from '../../agent/guest/guest-settings.js';
import type { Gateway } from '../../gateway.js';
import { agentQuery } from '../agent-query.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { exactUint64 } from '../exact-integer.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from '../schemas.js';

/** 1 TiB of 128 MiB blocks is 8192; this leaves room and keeps the agent command well under libvirt's caps. */
const MAX_MEMORY_BLOCK_CHANGES = 65536;

const memoryBlockSchema = z
  .object({
    index: z.number().int().describe("The block's physical index (memoryN in sysfs)"),
    online: z.boolean(),
    canOffline: z.boolean().nullable(),
  })
  .meta({ id: 'GuestMemoryBlock' });

const memoryBlocksSchema = z.object({ domain: domainRefSchema, blocks: z.array(memoryBlockSchema) }).meta({
  id: 'GuestMemoryBlocks',
  example: {
    domain: EXAMPLE_DOMAIN,
    blocks: [
      { index: 0, online: true, canOffline: true },
      { index: 1, online: true, canOffline: true },
    ],
  },
});

const memoryBlockInfoSchema = z
  .object({ domain: domainRefSchema, blockSizeBytes: exactUint64('Size of one memory block, the unit of memory hot(un)plug') })
  .meta({ id: 'GuestMemoryBlockInfo', example: { domain: EXAMPLE_DOMAIN, blockSizeBytes: 134217728 } });

const changeSchema = z.strictObject({ index: z.number().int().min(0), online: z.boolean() });

const memoryBlockChangeBody = z
  .strictObject({ blocks: z.array(changeSchema).min(1).max(MAX_MEMORY_BLOCK_CHANGES) })
  .meta({ id: 'GuestMemoryBlockChangeRequest', example: { blocks: [{ index: 1, online: true }] } });

const memoryBlockChangeResultSchema = z
  .object({
    domain: domainRefSchema,
    applied: z.number().int().describe("How many blocks' results are success"),
    results: z.array(
      z.object({
        index: z.number().int(),
        online: z.boolean().describe('The state asked for'),
        result: z.enum(MEMORY_BLOCK_RESULTS).or(z.string()).describe('success, not-found, operation-not-supported or operation-failed'),
        errno: z.number().int().nullable().describe("The guest's errno for a failure"),
      }),
    ),
  })
  .meta({
    id: 'GuestMemoryBlockChangeResult',
    example: { domain: EXAMPLE_DOMAIN, applied: 1, results: [{ index: 1, online: true, result: 'success', errno: null }] },
  });

export function guestMemoryBlockRoutes({ agent }: Gateway): DomainRoute[] {
  return [
    domainRoute({
      operationId: 'getMemoryBlocks',
      method: 'GET',
      path: '/memory-blocks',
      permission: 'read',
      tags: ['guest-settings'],
      summary: "The guest's memory blocks",
      description: 'Agent command: guest-get-memory-blocks.',
      response: { 200: { description: "The guest's memory blocks", schema: memoryBlocksSchema } },
      problems: [501],
      answer: async ({ domain, agentOpts }) => ({ blocks: await listMemoryBlocks(agent, domain, agentOpts) }),
    }),

    agentQuery(agent, {
      operationId: 'getMemoryBlockInfo',
      path: '/memory-block-info',
      permission: 'read',
      tags: ['guest-settings'],
      summary: 'The size of one memory block',
      command: guestGetMemoryBlockInfo,
      response: memoryBlockInfoSchema,
      problems: [501],
      reshape: (r) => ({ blockSizeBytes: r.size }),
    }),

    domainRoute({
      operationId: 'updateMemoryBlocks',
      method: 'PATCH',
      path: '/memory-blocks',
      permission: 'power',
      tags: ['guest-settings'],
      summary: "Takes the guest's memory blocks online or offline",
      description:
        'Agent commands: guest-get-memory-blocks (to check the request), then guest-set-memory-blocks. ' +
        '400 for blocks the guest does not have, a block listed twice, or taking every block offline; ' +
        '409 for a block the guest cannot take offline. Each block gets its own result.',
      body: memoryBlockChangeBody,
      response: { 200: { description: 'What happened to each block asked for', schema: memoryBlockChangeResultSchema } },
      problems: [501],
      answer: async (request) => {
        const changes = request.body.blocks.map((b) => ({ id: b.index, online: b.online }));
        const results = await setMemoryBlocks(agent, request.domain, changes, request.agentOpts);
        const applied = results.filter((r) => r.result === 'success').length;
        request.log.info({ requested: results.length, applied }, 'guest memory blocks changed');
        return { applied, results };
      },
    }),
  ];
}
