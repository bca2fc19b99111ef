// GET /domains and GET /domains/{domain}: what libvirt knows of each domain, and its agent's state.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { visibleTo } from '../../auth/authenticate.js';
import type { DomainInfo } from '../../domains/directory.js';
import type { Gateway } from '../../gateway.js';
import { problemResponses } from '../problem.js';
import { domainParams, domainSchema, type DomainBody } from '../schemas.js';

function toBody(d: DomainInfo): DomainBody {
  return { name: d.name, uuid: d.uuid, id: d.id, state: d.state, agentState: d.agent.state, agentChannel: d.agent.channel };
}

export function domainRoutes(gateway: Gateway): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/domains',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['domains'],
          summary: 'List every domain',
          description:
            'Every domain libvirt knows (that the token may touch), running or not, with its state and its guest agent state. Talks to libvirt only, never to a guest.',
          response: { 200: z.object({ domains: z.array(domainSchema) }), ...problemResponses() },
        },
      },
      async (request) => {
        const domains = await gateway.domains.list(request.clientGone);
        return { domains: visibleTo(request, domains).map(toBody) };
      },
    );

    app.get(
      '/domains/:domain',
      {
        config: { permission: 'read' },
        schema: {
          tags: ['domains'],
          summary: 'One domain, by name or UUID',
          params: domainParams,
          response: { 200: domainSchema, ...problemResponses(404) },
        },
      },
      async (request) => {
        request.domainName = request.params.domain;
        const ref = await gateway.domains.resolve(request.params.domain, request.clientGone);
        return toBody(await gateway.domains.describe(ref, request.clientGone));
      },
    );
  };
}
