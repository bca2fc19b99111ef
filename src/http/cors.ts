// Cross-origin calls from browser pages (@fastify/cors), off until cors.origins names an origin. Its onRequest hook
// runs before authentication: a preflight (OPTIONS, which a browser sends without the Authorization header) is
// answered there, without a token and without counting as a refusal; and an allowed origin's CORS headers are on
// the answer before any hook can refuse it, so a page can read a 401, 403 or 429 problem too. An origin not allowed
// gets no CORS header at all, and its preflight the not-found answer: the browser refuses the call.
import fastifyCors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { originMatcher } from '../config/cors-origins.js';

/** What a page may read of an answer besides the CORS-safelisted headers. */
export const CORS_EXPOSED_HEADERS = [
  'Location',
  'Retry-After',
  'X-Request-Id',
  'Content-Range',
  'Content-Length',
  'Accept-Ranges',
  'ETag',
  'WWW-Authenticate',
];
/** What a page may send besides the CORS-safelisted headers. */
export const CORS_ALLOWED_HEADERS = [
  'Authorization',
  'X-Auth-Token',
  'Content-Type',
  'Range',
  'If-None-Match',
  'Last-Event-ID',
  'X-Request-Id',
];
export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'];

/** The one route the plugin adds: OPTIONS on every path, so that the router lets preflights reach its hook. */
export function isCorsPreflightRoute(method: string | string[], url: string): boolean {
  return method === 'OPTIONS' && url === '*';
}

export async function registerCors(app: FastifyInstance, config: Config['cors']): Promise<void> {
  if (config.origins.length === 0) return;
  const allowed = originMatcher(config.origins);
  await app.register(fastifyCors, {
    hook: 'onRequest',
    // The request's own origin when allowed (with Vary: Origin), else nothing: never '*' in the header, so that a
    // cache shared by two origins cannot hand one the other's answer.
    origin: (origin, cb) => cb(null, allowed(origin) ? origin! : false),
    credentials: config.credentials,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    allowedHeaders: CORS_ALLOWED_HEADERS,
    methods: CORS_METHODS,
    maxAge: config.maxAgeSeconds,
    // An OPTIONS from an allowed origin without Access-Control-Request-Method is answered like a preflight (204)
    // rather than with the plugin's text/plain 400: every error of the gateway is problem+json.
    strictPreflight: false,
  });
}
