// The guest's memory blocks (the units of memory hot(un)plug): list, block size, online/offline.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { guestGetMemoryBlockInfo, MEMORY_BLOCK_RESULTS } from '../../agent/commands/system.js';
import { listMemoryBlocks, setMemoryBlocks } from '../../agent/guest/guest-settings.js';
import type { Gateway } from '../../gateway.js';
import { agentRouteSchema, agentTarget } from '../agent-route.js';
import { exactUint64 } from '../exact-integer.js';
import { domainRefSchema } from '../schemas.js';
import { domainRef, EXAMPLE_DOMAIN, guestRouteErrors } from './guest-route-common.js';

/** 1 TiB of 128 MiB blocks is 8192; this leaves room and keeps the agent command well under libvirt's caps. */
const MAX_MEMORY_BLOCK_CHANGES = 65536;

const memoryBlockSchema = z
  .object({
    index: z.number().int().describe("The block's physical index (memoryN in sysfs)"),
    online: z.boolean(),
    canOffline: z.boolean().nullable(),
  })
  .meta({ id: 'GuestMemoryBlock' });

const memoryBlocksSchema = z
  .object({ domain: domainRefSchema, blocks: z.array(memoryBlockSchema) })
  .meta({
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
  .meta({ id: 'GuestMemoryBlockChangeResult', example: { domain: EXAMPLE_DOMAIN, applied: 1, results: [{ index: 1, online: true, result: 'success', errno: null }] } });

export function guestMemoryBlockRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/domains/:domain/memory-blocks',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['guest-settings'],
          summary: "The guest's memory blocks",
          description: 'Agent command: guest-get-memory-blocks.',
          ...agentRouteSchema(gateway),
          response: { 200: memoryBlocksSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        return { domain: domainRef(dom), blocks: await listMemoryBlocks(gateway.agent, dom, opts) };
      },
    );

    app.get(
      '/domains/:domain/memory-block-info',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['guest-settings'],
          summary: 'The size of one memory block',
          description: 'Agent command: guest-get-memory-block-info.',
          ...agentRouteSchema(gateway),
          response: { 200: memoryBlockInfoSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const r = await gateway.agent.execute(dom, guestGetMemoryBlockInfo, undefined, opts);
        return { domain: domainRef(dom), blockSizeBytes: r.size };
      },
    );

    app.patch(
      '/domains/:domain/memory-blocks',
      {
        config: { permission: 'power' },
        schema: {
          tags: ['guest-settings'],
          summary: "Takes the guest's memory blocks online or offline",
          description:
            'Agent commands: guest-get-memory-blocks (to check the request), then guest-set-memory-blocks. 400 for blocks the guest does not have, a block listed twice, or taking every block offline; 409 for a block the guest cannot take offline. Each block gets its own result.',
          ...agentRouteSchema(gateway),
          body: memoryBlockChangeBody,
          response: { 200: memoryBlockChangeResultSchema, ...guestRouteErrors() },
        },
      },
      async (request) => {
        const { dom, opts } = await agentTarget(gateway, request);
        const results = await setMemoryBlocks(
          gateway.agent,
          dom,
          request.body.blocks.map((b) => ({ id: b.index, online: b.online })),
          opts,
        );
        const applied = results.filter((r) => r.result === 'success').length;
        request.log.info({ requested: results.length, applied }, 'guest memory blocks changed');
        return { domain: domainRef(dom), applied, results };
      },
    );
  };
}
