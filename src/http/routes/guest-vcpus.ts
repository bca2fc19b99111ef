// GET and PATCH /domains/{domain}/vcpus: the guest's logical processors, and taking them online or offline.
import { z } from 'zod';
import { listVcpus, setVcpus } from '../../agent/guest/guest-settings.js';
import type { Gateway } from '../../gateway.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from '../schemas.js';

/** Far above any guest's vCPU count (KVM allows 4096); keeps the agent command small. */
const MAX_VCPU_CHANGES = 8192;

const vcpuSchema = z
  .object({
    id: z.number().int().describe("The guest's logical processor id"),
    online: z.boolean(),
    canOffline: z.boolean().nullable().describe('Whether the guest can take it offline (false for the boot CPU on most guests)'),
  })
  .meta({ id: 'GuestVcpu' });

const vcpusSchema = z
  .object({ domain: domainRefSchema, online: z.number().int(), total: z.number().int(), vcpus: z.array(vcpuSchema) })
  .meta({
    id: 'GuestVcpus',
    example: { domain: EXAMPLE_DOMAIN, online: 1, total: 1, vcpus: [{ id: 0, online: true, canOffline: false }] },
  });

const changeSchema = z.strictObject({ id: z.number().int().min(0), online: z.boolean() });

const vcpuChangeBody = z
  .strictObject({
    vcpus: z.array(changeSchema).min(1).max(MAX_VCPU_CHANGES).describe('Applied in this order; the agent stops at the first failure'),
  })
  .meta({ id: 'GuestVcpuChangeRequest', example: { vcpus: [{ id: 1, online: false }] } });

const vcpuChangeResultSchema = z
  .object({
    domain: domainRefSchema,
    requested: z.number().int(),
    applied: z.number().int().describe('How many changes, from the first, the guest applied'),
    complete: z.boolean().describe('Whether every change was applied'),
    notApplied: z.array(changeSchema).describe('The changes from the first that failed on; repeat them to see its error'),
    vcpus: z.array(vcpuSchema).describe("The guest's vCPUs afterwards"),
  })
  .meta({
    id: 'GuestVcpuChangeResult',
    example: {
      domain: EXAMPLE_DOMAIN,
      requested: 1,
      applied: 1,
      complete: true,
      notApplied: [],
      vcpus: [
        { id: 0, online: true, canOffline: false },
        { id: 1, online: false, canOffline: true },
      ],
    },
  });

export function guestVcpuRoutes({ agent }: Gateway): DomainRoute[] {
  return [
    domainRoute({
      operationId: 'getVcpus',
      method: 'GET',
      path: '/vcpus',
      permission: 'read',
      tags: ['guest-settings'],
      summary: "The guest's logical processors",
      description: 'Agent command: guest-get-vcpus.',
      response: { 200: { description: "The guest's logical processors", schema: vcpusSchema } },
      problems: [501],
      answer: async ({ domain, agentOpts }) => {
        const vcpus = await listVcpus(agent, domain, agentOpts);
        return { online: vcpus.filter((v) => v.online).length, total: vcpus.length, vcpus };
      },
    }),

    domainRoute({
      operationId: 'updateVcpus',
      method: 'PATCH',
      path: '/vcpus',
      permission: 'power',
      tags: ['guest-settings'],
      summary: "Takes the guest's logical processors online or offline",
      description:
        'Agent commands: guest-get-vcpus (to check the request), guest-set-vcpus, guest-get-vcpus. ' +
        '400 for ids the guest does not have, an id listed twice, or taking every vCPU offline; ' +
        '409 for a vCPU the guest cannot take offline. The answer says how many changes were applied.',
      body: vcpuChangeBody,
      response: { 200: { description: 'How many of the processors asked for changed', schema: vcpuChangeResultSchema } },
      problems: [501],
      answer: async (request) => {
        const r = await setVcpus(agent, request.domain, request.body.vcpus, request.agentOpts);
        request.log.info({ requested: r.requested, applied: r.applied }, 'guest vCPUs changed');
        return {
          requested: r.requested,
          applied: r.applied,
          complete: r.applied === r.requested,
          notApplied: r.notApplied,
          vcpus: r.vcpus,
        };
      },
    }),
  ];
}
