// The one Authorization header of a request. Node keeps only the first of several in request.headers, so a
// second one (a proxy adding its own, a client smuggling one past it) would be silently ignored by whoever
// reads request.headers, and another layer might read the other one: refused instead, before any identity
// is decided.
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../errors.js';

/** A refusal before any identity is decided (two Authorization headers, a token in the URL), counted with the 401s per address (refusal-limit.ts). */
export class PreAuthenticationRefusal extends GatewayError {}

/** request.headers.authorization, once it is known to be the only one; throws 400 invalid_request otherwise. */
export function authorizationHeader(request: FastifyRequest): string | undefined {
  const raw = request.raw.rawHeaders ?? [];
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'authorization') count++;
  if (count > 1) throw new PreAuthenticationRefusal('invalid_request', `send one Authorization header, not ${count}`);
  return request.headers.authorization;
}
