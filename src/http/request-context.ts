// Per-request state: an abort signal for when the client goes away, what the request did (domain, agent
// commands), and the one log line per request that says so.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
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

/** The request log line's fields besides its effect: only types that cannot carry a redacted path (see the hook). */
interface RequestLine {
  method: string;
  url: string;
  route: string | undefined;
  statusCode: number;
  durationMs: number;
  domain: string | undefined;
  agentCommands: readonly string[] | undefined;
  clientGone: true | undefined;
}

/** Runs once per request when it is over: answered, or its client gone (see registerRequestContext). */
export type RequestDoneHook = (request: FastifyRequest, reply: FastifyReply) => void;

export interface RequestDone {
  add(hook: RequestDoneHook): void;
}

const doneRan = new WeakSet<FastifyRequest>();
const sending = new WeakSet<FastifyRequest>();
/** Requests whose client went away before their answer was written out. */
const clientLeft = new WeakSet<FastifyRequest>();
/** The abort controller behind a request's clientGone, once something asked for it. */
const controllers = new WeakMap<FastifyRequest, AbortController>();

const clientWentAway = () => new DOMException('the client went away', 'AbortError');

/** Whether the request's client went away before its answer was written out (without making its abort signal). */
export function clientHasLeft(request: FastifyRequest): boolean {
  return clientLeft.has(request);
}

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

  // The AbortController is made only when something asks for the signal (an agent call, a libvirt lookup): most
  // cached answers never do, and one per request was a visible part of their CPU.
  app.decorateRequest('clientGone', {
    getter(this: FastifyRequest): AbortSignal {
      let controller = controllers.get(this);
      if (!controller) {
        controller = new AbortController();
        if (clientLeft.has(this)) controller.abort(clientWentAway());
        controllers.set(this, controller);
      }
      return controller.signal;
    },
  });
  app.decorateRequest('domainName', undefined);
  app.decorateRequest('domain', null);
  app.decorateRequest('agentOpts', null);
  app.decorateRequest('agentCommands', null as unknown as string[]);
  app.decorateRequest('guestEffect', undefined);

  // Callback-style hooks: an async one costs a promise per request for nothing here.
  app.addHook('onRequest', (request, reply, next) => {
    request.agentCommands = [];
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished) return;
      clientLeft.add(request);
      controllers.get(request)?.abort(clientWentAway());
      // The handler already answered (a download cut off): nothing more will happen to this request.
      if (sending.has(request)) done(request, reply);
    });
    next();
  });

  app.addHook('onSend', (request, reply, payload, next) => {
    sending.add(request);
    // Answered after the client left (an upload's clean-up finished): 'finish' will never come.
    if (clientLeft.has(request)) setImmediate(() => done(request, reply));
    next(null, payload);
  });

  app.addHook('onResponse', (request, reply, next) => {
    done(request, reply);
    next();
  });

  // The request line's fields are strings, numbers and a list of command names: none can hold a path the
  // logger redacts (src/logger.ts), except `effect`, an open record. Without one the line skips redaction, which
  // cost as much as the rest of the line (pino's redaction walks every field against every path).
  const unredacted = app.log.child({}, { redact: [] });
  hooks.push((request, reply) => {
    const line: RequestLine = {
      method: request.method,
      // Never the raw query: a value there may be a secret the client should not have put in a URL.
      url: loggableUrl(request),
      route: request.routeOptions.url,
      statusCode: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      domain: request.domainName,
      agentCommands: request.agentCommands.length ? request.agentCommands : undefined,
      clientGone: clientLeft.has(request) || undefined,
    };
    if (request.guestEffect !== undefined) request.log.info({ ...line, effect: request.guestEffect }, 'request');
    else if ((request.log as unknown as Logger).isLevelEnabled('info')) unredacted.info({ reqId: request.id, ...line }, 'request');
  });
  return { add: (hook) => hooks.push(hook) };
}

/** What the agent layer needs from a request: its deadline, its abort signal, and where to note its commands. */
export function agentCallOptions(request: FastifyRequest, timeoutMs?: number): AgentCallOptions {
  return {
    timeoutMs,
    // Made when a call is made: a route that answers without the agent never makes the request's signal. (A
    // function rather than a getter: an object literal with a getter cost 0.5 µs to make, and a spread of it
    // would make the signal.)
    signal: () => request.clientGone,
    onCommand: (execute) => request.agentCommands.push(execute),
  };
}
