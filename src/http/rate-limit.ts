// Per-identity request rates (@fastify/rate-limit). Counted in preHandler, after the onRequest authentication
// hook has set request.identity, so a limit follows the token and not the address it comes from. Requests
// refused by authentication never reach preHandler: refusal-limit.ts counts those, per client address.
import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';

/** Probes of a supervisor or load balancer must never be refused for coming too often. */
export const RATE_LIMIT_EXEMPT: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export async function registerRateLimit(app: FastifyInstance, config: Config): Promise<void> {
  const { max, timeWindowMs } = config.limits.rateLimit;
  if (max === 0) return;
  const own = new Map(config.auth.identities.flatMap((i) => (i.rateLimit ? [[i.name, i.rateLimit] as const] : [])));
  const ownLimit = (request: FastifyRequest) => (request.identity ? own.get(request.identity.name) : undefined);
  await app.register(fastifyRateLimit, {
    global: true,
    hook: 'preHandler',
    // Prefixed so that an identity named like an address never shares a counter with that address.
    keyGenerator: (request) => (request.identity ? `identity:${request.identity.name}` : `address:${request.ip}`),
    max: (request) => ownLimit(request)?.max ?? max,
    timeWindow: (request) => ownLimit(request)?.timeWindowMs ?? timeWindowMs,
    allowList: (request) => RATE_LIMIT_EXEMPT.has(request.routeOptions.url ?? ''),
    // Thrown, so the problem handler answers with problem+json; the plugin has set Retry-After already.
    errorResponseBuilder: (_request, context) =>
      new GatewayError('rate_limited', `more than ${context.max} requests in the window; retry in ${context.after}`, {
        retryAfter: Math.max(1, Math.ceil(context.ttl / 1000)),
      }),
  });
}
