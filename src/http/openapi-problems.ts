// The problem statuses any route may answer whatever it does, derived from its method and permission and the
// configuration: the OpenAPI document declares them on every operation (openapi-document.ts), beside the ones a
// route declares for what it does itself (404 for a domain, 416 for a range...).
import type { Config } from '../config/schema.js';
import type { Permission } from './permissions.js';
import { RATE_LIMIT_EXEMPT } from './rate-limit.js';

/** Fastify reads a body for these methods whatever the route's schema: a too large one is 413, an unknown type 415. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface RouteShape {
  method: string;
  url: string;
  permission: Permission;
}

/** Whether the route asks for a token: every guarded route, and the public ones too under auth.protectPublic. */
export function needsToken(route: Pick<RouteShape, 'permission'>, config: Config): boolean {
  return config.auth.mode === 'tokens' && (route.permission !== 'public' || config.auth.protectPublic);
}

export function generalProblemStatuses(route: RouteShape, config: Config): number[] {
  const token = needsToken(route, config);
  const limited =
    (config.limits.rateLimit.max > 0 && !RATE_LIMIT_EXEMPT.has(route.url)) || (token && config.limits.unauthenticated.max > 0);
  return [
    // A parameter, query or header that fails its schema, a token in the URL, a malformed request.
    400,
    ...(token ? [401] : []),
    // A token without the route's scope (public routes need none).
    ...(token && route.permission !== 'public' ? [403] : []),
    ...(BODY_METHODS.has(route.method) ? [413, 415] : []),
    ...(limited ? [429] : []),
    // A fault; and while the gateway shuts down, Fastify refuses new requests with 503.
    500,
    503,
  ];
}
