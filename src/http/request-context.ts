// Per-request state: an abort signal for when the client goes away, what the request did (domain, agent
// commands), and the one log line per request that says so.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AgentCallOptions } from '../agent/service.js';
import { loggableUrl } from './query-secrets.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Aborts when the client disconnects before its answer is sent. */
    clientGone: AbortSignal;
    /** The domain the request is about, as named in the URL. */
    domainName: string | undefined;
    /** Agent commands sent on behalf of this request. */
    agentCommands: string[];
    /** What the request did or left in the guest beyond its route and status (an upload's bytes, a file left behind): logged and audited. */
    guestEffect: Record<string, unknown> | undefined;
  }
}

export function registerRequestContext(app: FastifyInstance): void {
  app.decorateRequest('clientGone', null as unknown as AbortSignal);
  app.decorateRequest('domainName', undefined);
  app.decorateRequest('agentCommands', null as unknown as string[]);
  app.decorateRequest('guestEffect', undefined);

  app.addHook('onRequest', async (request, reply) => {
    const controller = new AbortController();
    request.clientGone = controller.signal;
    request.agentCommands = [];
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) controller.abort(new DOMException('the client went away', 'AbortError'));
    });
  });

  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        // Never the raw query: a value there may be a secret the client should not have put in a URL.
        url: loggableUrl(request),
        route: request.routeOptions.url,
        statusCode: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
        domain: request.domainName,
        agentCommands: request.agentCommands.length ? request.agentCommands : undefined,
        effect: request.guestEffect,
      },
      'request',
    );
  });
}

/** What the agent layer needs from a request: its deadline, its abort signal, and where to note its commands. */
export function agentCallOptions(request: FastifyRequest, timeoutMs?: number): AgentCallOptions {
  return {
    timeoutMs,
    signal: request.clientGone,
    onCommand: (execute) => request.agentCommands.push(execute),
  };
}
