// What every route that talks to one domain's guest agent shares: its path and query schemas, its error
// answers, and turning the request into a domain and the options of its agent calls.
import type { FastifyRequest } from 'fastify';
import type { AgentCallOptions } from '../agent/core/service.js';
import type { Gateway } from '../gateway.js';
import { problemResponses } from './problem.js';
import { agentCallOptions } from './request-context.js';
import { deadlineQuery, domainParams } from './schemas.js';
import type { DomainRef } from '../domains/vocabulary.js';

export function agentRouteSchema(gateway: Gateway) {
  return { params: domainParams, querystring: deadlineQuery(gateway.config.agent.maxTimeoutMs) };
}

export const agentRouteErrors = () => problemResponses(404, 409, 502, 504);

type AgentRequest = FastifyRequest & { params: { domain: string }; query: { timeoutMs?: number } };

export async function agentTarget(gateway: Gateway, request: AgentRequest): Promise<{ dom: DomainRef; opts: AgentCallOptions }> {
  request.domainName = request.params.domain;
  const dom = await gateway.domains.resolve(request.params.domain, request.clientGone);
  return { dom, opts: agentCallOptions(request, request.query.timeoutMs) };
}
