// GET /domains and GET /domains/{domain}: what libvirt knows of each domain, and its agent's state.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { visibleTo } from '../../auth/authenticate.js';
import type { DomainInfo } from '../../domains/sources.js';
import type { Gateway } from '../../gateway.js';
import { withEtags } from '../conditional-get.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { novaFilter, novaFilterQuery } from '../nova-filter.js';
import { domainSchema, type DomainBody } from '../schemas.js';

function toBody(d: DomainInfo): DomainBody {
  return {
    host: d.host,
    backend: d.backend,
    name: d.name,
    uuid: d.uuid,
    id: d.id,
    state: d.state,
    agentState: d.agent.state,
    agentChannel: d.agent.channel,
    ...(d.nova ? { nova: d.nova } : {}),
  };
}

export function domainListRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    await withEtags(app);
    app.get(
      '/domains',
      {
        config: { permission: 'read', etag: true, responseDescriptions: { 200: 'The domains, and the hosts that could not be listed' } },
        schema: {
          operationId: 'listDomains',
          tags: ['domains'],
          summary: 'List every domain',
          description:
            'Every domain of every libvirt host (that the token may touch), running or not, with its host, ' +
            'state and guest agent state. Talks to libvirt only, never to a guest. ' +
            'A host that is down is listed in unavailableHosts and the others answer; a domain found on several hosts appears once per host. ' +
            "A domain that OpenStack Nova runs carries `nova` (its display name, project, user, flavor), read from libvirt's metadata; " +
            '?project= and ?novaName= list only such domains.',
          querystring: z.object(novaFilterQuery),
          response: {
            200: z.object({
              domains: z.array(domainSchema),
              unavailableHosts: z
                .array(z.object({ host: z.string(), code: z.string(), detail: z.string() }))
                .describe('Hosts that could not be listed (several hosts configured): their domains are missing from this answer'),
            }),
          },
        },
      },
      async (request) => {
        const { domains, failed } = await gateway.domains.list(() => request.clientGone);
        const matches = novaFilter(request.query);
        const wanted = matches ? domains.filter((d) => matches(d.nova)) : domains;
        return { domains: visibleTo(request, wanted).map(toBody), unavailableHosts: failed };
      },
    );
  };
}

export function domainRoutes({ domains }: Gateway): DomainRoute[] {
  return [
    domainRoute({
      operationId: 'getDomain',
      method: 'GET',
      path: '',
      permission: 'read',
      tags: ['domains'],
      summary: 'One domain, by name or UUID (host:name picks the host)',
      description:
        "What libvirt knows of the domain (its host, state, ids), its guest agent's state and, for an OpenStack instance, what Nova " +
        'wrote into its metadata (`nova`); talks to libvirt only, never to the guest.',
      agent: false,
      etag: true,
      response: { 200: { description: 'The domain', schema: domainSchema } },
      handler: async (request) => toBody(await domains.describe(request.domain, () => request.clientGone)),
    }),
  ];
}
