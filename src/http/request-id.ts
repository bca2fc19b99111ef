// The request id: the client's X-Request-Id when it is a short, plain token, else a fresh UUID. It ends up in
// every log and audit line and in every answer, so it must be small and inert; it correlates a client's logs
// with ours and is never trusted for anything else (not identity, not deduplication, not authorisation).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { looksLikeToken } from './query-secrets.js';

/** Unreserved URI characters plus ':', which covers UUIDs, ULIDs, trace ids and `span:id` styles. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._~:-]{1,128}$/;

/**
 * Fastify's genReqId. Two X-Request-Id headers arrive joined by ', ', which the pattern refuses; so is an id
 * shaped like one of our tokens, which a confused client could send there and every log line would repeat.
 */
export function requestId(req: IncomingMessage): string {
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' && CLIENT_REQUEST_ID.test(sent) && !looksLikeToken(sent) ? sent : randomUUID();
}
