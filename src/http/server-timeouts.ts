// The HTTP server's deadlines for receiving a request. Fastify hands requestTimeout to the server only after
// creating it, so Node's headersTimeout stays at its default (60 s), and Node looks for expired requests only
// every connectionsCheckingInterval (30 s by default, read when the server starts listening): a body trickled
// in at 10 bytes/s outlived a 20 s requestTimeout by far. Set here on the server, before listen.
import type { Server } from 'node:http';
import type { Config } from '../config/schema.js';

/** How often Node looks for requests past a deadline, so each is enforced within about this much. */
export const DEADLINE_CHECK_INTERVAL_MS = 1_000;

export function applyServerTimeouts(server: Server, limits: Config['limits']): void {
  server.requestTimeout = limits.requestTimeoutMs;
  // The whole request's deadline covers its headers too; 0 means no request deadline, not no header deadline.
  server.headersTimeout =
    limits.requestTimeoutMs > 0 ? Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) : limits.headersTimeoutMs;
  // A public option of http.createServer, missing from @types/node's Server; cleared by server.close().
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = DEADLINE_CHECK_INTERVAL_MS;
}
