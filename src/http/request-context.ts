// Per-request state: an abort signal for when the client goes away, what the request did (domain, agent
// commands), and the one log line per request that says so.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AgentCallOptions } from '../agent/core/service.js';
import type { DomainRef } from '../domains/vocabulary.js';
import { loggableUrl } from './query-secrets.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Aborts when the client disconnects before its answer is sent. */
    clientGone: AbortSignal;
    /** The domain the request is about, as named in the URL. */
    domainName: string | undefined;
    /** That domain, once a /domains/{domain} route has looked it up (domain-scope.ts); null elsewhere and before. */
    domain: DomainRef | null;
    /** The options of that route's agent calls: its ?timeoutMs=, its client going away, its commands noted. */
    agentOpts: AgentCallOptions | null;
    /** Agent commands sent on behalf of this request. */
    agentCommands: string[];
    /** What the request did or left in the guest beyond its route and status (an upload's bytes, a file left behind): logged and audited. */
    guestEffect: Record<string, unknown> | undefined;
  }
}

/** Runs once per request when it is over: answered, or its client gone (see registerRequestContext). */
export type RequestDoneHook = (request: FastifyRequest, reply: FastifyReply) => void;

export interface RequestDone {
  add(hook: RequestDoneHook): void;
}

const doneRan = new WeakSet<FastifyRequest>();
const sending = new WeakSet<FastifyRequest>();

/**
 * Fastify runs onResponse only when the answer has been written out ('finish'): a request whose client went
 * away first (an upload cut off half-way, a download abandoned) would leave no request log line and no audit
 * line, though it may have changed the guest. Here "done" is onResponse, or, once the client has gone, the
 * moment the handler has finished (its answer reached onSend) or the socket closed after that, whichever is last.
 */
export function registerRequestContext(app: FastifyInstance): RequestDone {
  const hooks: RequestDoneHook[] = [];
  const done = (request: FastifyRequest, reply: FastifyReply) => {
    if (doneRan.has(request)) return;
    doneRan.add(request);
    for (const hook of hooks) {
      try {
        hook(request, reply);
      } catch (err) {
        request.log.error({ err }, 'request-done hook failed');
      }
    }
  };

  app.decorateRequest('clientGone', null as unknown as AbortSignal);
  app.decorateRequest('domainName', undefined);
  app.decorateRequest('domain', null);
  app.decorateRequest('agentOpts', null);
  app.decorateRequest('agentCommands', null as unknown as string[]);
  app.decorateRequest('guestEffect', undefined);

  app.addHook('onRequest', async (request, reply) => {
    const controller = new AbortController();
    request.clientGone = controller.signal;
    request.agentCommands = [];
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished) return;
      controller.abort(new DOMException('the client went away', 'AbortError'));
      // The handler already answered (a download cut off): nothing more will happen to this request.
      if (sending.has(request)) done(request, reply);
    });
  });

  app.addHook('onSend', async (request, reply) => {
    sending.add(request);
    // Answered after the client left (an upload's clean-up finished): 'finish' will never come.
    if (request.clientGone?.aborted) setImmediate(() => done(request, reply));
  });

  app.addHook('onResponse', async (request, reply) => done(request, reply));

  hooks.push((request, reply) => {
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
        clientGone: request.clientGone?.aborted || undefined,
      },
      'request',
    );
  });
  return { add: (hook) => hooks.push(hook) };
}

/** What the agent layer needs from a request: its deadline, its abort signal, and where to note its commands. */
export function agentCallOptions(request: FastifyRequest, timeoutMs?: number): AgentCallOptions {
  return {
    timeoutMs,
    signal: request.clientGone,
    onCommand: (execute) => request.agentCommands.push(execute),
  };
}
