// Every route about one domain (/domains/{domain}...) is declared the same way (domainRoute): its method, path
// and permission, its OpenAPI text, the schemas of what differs, and its own logic. Its scope (domainScope, an
// encapsulated plugin) does the rest once for all of them: the {domain} parameter and ?timeoutMs=, the problem
// answers, authorising the domain in onRequest (before the body is read) for identities whose patterns decide,
// looking it up once into request.domain, the options of its agent calls, and the domain reference that starts
// an answer about the domain.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { z } from 'zod';
import type { AgentCallOptions } from '../agent/core/service.js';
import { authoriseDomain, patternsDecide, refuseWith } from '../auth/authenticate.js';
import { requireIdentity } from '../auth/identity.js';
import type { Gateway } from '../gateway.js';
import type { DomainRef } from '../domains/vocabulary.js';
import type { Permission } from './permissions.js';
import { withEtags } from './conditional-get.js';
import { problemResponses } from './problem.js';
import { agentCallOptions } from './request-context.js';
import { deadlineQuery, domainParams, domainRef } from './schemas.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on the routes of a domain scope: app.ts refuses a /domains/:domain route outside one, which nothing would authorise. */
    domainScope?: true;
  }
}

/** What every route that talks to the domain's agent may answer besides its own: 404, 409, 502, 504. */
const AGENT_PROBLEMS = [404, 409, 502, 504];
/** A route that only looks the domain up: not found, or ambiguous between hosts. */
const LOOKUP_PROBLEMS = [404, 409];

/** A JSON answer: its schema, and what it is (the OpenAPI response's description). */
export interface JsonResponse {
  description: string;
  schema: z.ZodType;
}
/** A response given as its content types (a file's bytes) rather than one JSON schema, with the headers it sets. */
export interface ContentResponse {
  description: string;
  headers?: Record<string, ResponseHeader>;
  content: Record<string, { schema: z.ZodType }>;
}
/** A response header: its JSON schema, with its description (@fastify/swagger makes the header object of it). */
export interface ResponseHeader {
  description: string;
  type: 'string' | 'integer';
  minimum?: number;
  enum?: string[];
}
type Responses = Record<number, JsonResponse | ContentResponse>;

type Out<T, Absent> = T extends z.ZodType ? z.output<T> : Absent;
type ResponseOut<T> = T extends JsonResponse ? z.output<T['schema']> : never;
interface Parts<P, Q, B> {
  Params: { domain: string } & Out<P, unknown>;
  Querystring: { timeoutMs?: number } & Out<Q, unknown>;
  Body: Out<B, undefined>;
}

/** A domain route's request before its domain is looked up, its parts validated. */
export type ScopedRequest<P = undefined, Q = undefined, B = undefined> = FastifyRequest<Parts<P, Q, B>>;

/** ... and once it is: the domain, and the options for the request's agent calls. */
export type DomainRequest<P = undefined, Q = undefined, B = undefined> = ScopedRequest<P, Q, B> & {
  domain: DomainRef;
  agentOpts: AgentCallOptions;
};

/** The JSON bodies a route's success responses describe. */
type Answer<R extends Responses> = { [K in keyof R]: ResponseOut<R[K]> }[keyof R];
/** An answer about the domain, without the domain reference the scope puts first. */
export type AnswerFields<T> = T extends unknown ? Omit<T, 'domain'> : never;

interface DomainRouteBase<P, Q, B, R extends Responses, C> {
  /** The operation's stable name in the OpenAPI document, the method name of generated clients: never renamed. */
  operationId: string;
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Below /domains/:domain ('' for the domain itself). */
  path: string;
  permission: Permission;
  tags: string[];
  summary: string;
  /** Says first which agent command(s) the route sends. */
  description?: string;
  /** Path parameters besides {domain}, query parameters besides ?timeoutMs=, the request headers it reads, and the body. */
  params?: P;
  querystring?: Q;
  headers?: z.ZodObject;
  body?: B;
  consumes?: string[];
  /** The success answers; the problem answers are added (here and in openapi-document.ts). */
  response: R;
  /** Problem statuses beyond those every agent route answers (AGENT_PROBLEMS) and those any route may (openapi-problems.ts). */
  problems?: number[];
  /** false for a route that only looks the domain up (no ?timeoutMs=, no agent problems). */
  agent?: false;
  /** The body reaches the route as the request stream, unbuffered, whatever its content type (uploads). */
  streamBody?: true;
  /** A GET whose answers carry an ETag, 304 when If-None-Match still matches (conditional-get.ts). */
  etag?: true;
  bodyLimit?: number;
  exposeHeadRoute?: boolean;
  /**
   * Checks that need no domain, run before it is looked up: they refuse the request whatever the domain (and,
   * when nobody's patterns made onRequest look it up, without a lookup). What they answer is given to the route.
   */
  check?: (request: ScopedRequest<P, Q, B>, reply: FastifyReply) => C;
}

/** A route declaration: `answer` answers about the domain (the scope puts its reference first), `handler` answers as it likes. */
export type DomainRouteSpec<P, Q, B, R extends Responses, C> = DomainRouteBase<P, Q, B, R, C> &
  (
    | { answer: (request: DomainRequest<P, Q, B>, reply: FastifyReply, checked: C) => Promise<AnswerFields<Answer<R>>>; handler?: never }
    | {
        handler: (request: DomainRequest<P, Q, B>, reply: FastifyReply, checked: C) => Promise<Answer<R> | FastifyReply | undefined>;
        answer?: never;
      }
  );

/** A declaration as the scope registers it, its types checked by domainRoute. */
export type DomainRoute = DomainRouteBase<z.ZodObject | undefined, z.ZodObject | undefined, z.ZodType | undefined, Responses, unknown> & {
  answer?: (request: DomainRequest, reply: FastifyReply, checked: unknown) => Promise<object>;
  handler?: (request: DomainRequest, reply: FastifyReply, checked: unknown) => Promise<unknown>;
};

/** Declares a route of a domain scope; the request's parts and the answer are typed from its schemas. */
export function domainRoute<
  P extends z.ZodObject | undefined = undefined,
  Q extends z.ZodObject | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  R extends Responses = Responses,
  C = undefined,
>(spec: DomainRouteSpec<P, Q, B, R, C>): DomainRoute {
  return spec as unknown as DomainRoute;
}

/** A module's routes, built from the services it is given, in the order the OpenAPI document lists them. */
export type DomainRouteModule = (services: Gateway) => DomainRoute[];

/**
 * One encapsulated plugin for the routes of these modules. (routes/index.ts has two, only so that GET /addresses
 * keeps its place in the OpenAPI document, beside the network interfaces.)
 */
export function domainScope(...modules: DomainRouteModule[]): (services: Gateway) => FastifyPluginAsync {
  return (services) => async (app) => {
    // After the authentication hook (app.ts): an identity whose patterns decide may touch the domain, or 403.
    // Callback-style: for an identity whose patterns do not decide (most), no promise per request.
    app.addHook('onRequest', (request, _reply, next) => {
      const identity = requireIdentity(request.identity);
      if (!patternsDecide(identity)) return next();
      const { domain } = request.params as { domain: string };
      authoriseDomain(services.domains, identity, domain, () => request.clientGone).then((dom) => {
        request.domain = dom;
        next();
      }, refuseWith(next));
    });
    const deadline = deadlineQuery(services.config.agent.maxTimeoutMs);
    for (const module of modules) {
      for (const route of module(services)) {
        const options = routeOptions(route, deadline, services);
        if (route.streamBody) {
          await app.register(async (scope) => {
            takeBodyAsStream(scope);
            scope.route(options);
          });
        } else if (route.etag) {
          await app.register(async (scope) => {
            await withEtags(scope);
            scope.route(options);
          });
        } else app.route(options);
      }
    }
  };
}

/**
 * The body reaches the handler as the raw request stream, whatever its content type (curl --data-binary sends
 * application/x-www-form-urlencoded). Encapsulated: only the route that asked sees it.
 */
function takeBodyAsStream(scope: FastifyInstance): void {
  const asStream = (_req: unknown, payload: NodeJS.ReadableStream, done: (err: Error | null, body?: unknown) => void) =>
    done(null, payload);
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('application/octet-stream', asStream);
  scope.addContentTypeParser('*', asStream);
}

/** Fastify validates and serialises with the schemas; the document's descriptions of JSON answers go in the config. */
function splitResponses(responses: Responses) {
  const schemas: Record<number, z.ZodType | ContentResponse> = {};
  const descriptions: Record<number, string> = {};
  for (const [status, r] of Object.entries(responses)) {
    if ('schema' in r) {
      schemas[Number(status)] = r.schema;
      descriptions[Number(status)] = r.description;
    } else schemas[Number(status)] = r;
  }
  return { schemas, descriptions };
}

function routeOptions(route: DomainRoute, deadline: z.ZodObject, services: Gateway): RouteOptions {
  const talksToAgent = route.agent !== false;
  const querystring = talksToAgent ? (route.querystring ? deadline.extend(route.querystring.shape) : deadline) : undefined;
  const responses = splitResponses(route.response);
  return {
    method: route.method,
    url: `/domains/:domain${route.path}`,
    config: {
      permission: route.permission,
      domainScope: true,
      responseDescriptions: responses.descriptions,
      ...(route.etag ? { etag: true } : {}),
      // @fastify/swagger leaves HEAD routes out unless asked: a declared one (files) is an operation of its own.
      ...(route.method === 'HEAD' ? { swagger: { exposeHeadRoute: true } } : {}),
    },
    ...(route.bodyLimit !== undefined ? { bodyLimit: route.bodyLimit } : {}),
    ...(route.exposeHeadRoute !== undefined ? { exposeHeadRoute: route.exposeHeadRoute } : {}),
    schema: {
      operationId: route.operationId,
      tags: route.tags,
      summary: route.summary,
      ...(route.description !== undefined ? { description: route.description } : {}),
      ...(route.consumes ? { consumes: route.consumes } : {}),
      params: route.params ? domainParams.extend(route.params.shape) : domainParams,
      ...(querystring ? { querystring } : {}),
      ...(route.headers ? { headers: route.headers } : {}),
      ...(route.body ? { body: route.body } : {}),
      response: {
        ...responses.schemas,
        ...problemResponses(...(talksToAgent ? AGENT_PROBLEMS : LOOKUP_PROBLEMS), ...(route.problems ?? [])),
      },
    },
    // The lookup is the handler's first step rather than a preHandler hook of the scope: that would run before the
    // rate limit (whose preHandler @fastify/rate-limit adds to each route), and the limit and the route's own checks
    // answer first, whatever the domain.
    handler: async (req: FastifyRequest, reply: FastifyReply) => {
      const checked = route.check?.(req as ScopedRequest, reply);
      const { domain } = req.params as { domain: string };
      req.domainName = domain;
      // Looked up here unless onRequest did while authorising it: once per request either way.
      req.domain ??= await services.domains.resolve(domain, () => req.clientGone);
      req.agentOpts = agentCallOptions(req, (req.query as { timeoutMs?: number }).timeoutMs);
      const request = req as DomainRequest;
      if (route.answer) return { domain: domainRef(request.domain), ...(await route.answer(request, reply, checked)) };
      return route.handler!(request, reply, checked);
    },
  };
}
