// The Fastify application: plugins, error handling, OpenAPI and the routes. Handlers reach libvirt only
// through the Gateway's services.
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { createAuditLog, registerAudit } from './audit.js';
import { Authenticator, registerAuthentication } from '../auth/authenticate.js';
import type { Gateway } from '../gateway.js';
import { registerHttpMetrics } from './http-metrics.js';
import { clientErrorHandler } from './client-error.js';
import { registerJsonBodyParser } from './json-body.js';
import { PERMISSIONS } from './permissions.js';
import { problemForFrameworkError, registerProblemHandlers } from './problem.js';
import { registerQueryTokenRefusal } from './query-secrets.js';
import { registerRateLimit } from './rate-limit.js';
import { registerRefusalLimit } from './refusal-limit.js';
import { requestId } from './request-id.js';
import { httpsOptions } from './tls.js';
import { registerRequestContext } from './request-context.js';
import { exactSerializerCompiler } from './serializer.js';
import { applyServerTimeouts } from './server-timeouts.js';
import { ROUTE_MODULES, ROUTE_TAGS } from './routes/index.js';

export const API_VERSION = '0.1.0';
const DOCS_PREFIX = '/docs';

/** zod registers an input and an output variant of every named schema; keep the ones referenced. */
type OpenApiObject = ReturnType<typeof jsonSchemaTransformObject>;
function pruneUnusedComponents(doc: OpenApiObject): OpenApiObject {
  const { components, ...rest } = doc as { components?: { schemas?: Record<string, unknown> } };
  const schemas = components?.schemas;
  if (!schemas) return doc;
  let used = new Set<string>();
  // Follow references from the paths, then from the kept schemas, until nothing new turns up.
  let text = JSON.stringify(rest);
  for (;;) {
    const next = new Set([...text.matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!));
    if (next.size === used.size) break;
    used = next;
    text = JSON.stringify([rest, ...[...used].map((n) => schemas[n])]);
  }
  const kept = Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name)));
  return { ...doc, components: { ...components, schemas: kept } } as OpenApiObject;
}

/** Fastify's wildcard parameter is named '*'; the document calls it {path}, which clients can generate code for. */
function nameWildcards(doc: OpenApiObject): OpenApiObject {
  const paths = (doc as { paths?: Record<string, Record<string, { parameters?: { in: string; name: string }[] }>> }).paths;
  if (!paths) return doc;
  const renamed = Object.fromEntries(
    Object.entries(paths).map(([url, item]) => {
      if (!url.includes('{*}')) return [url, item];
      for (const op of Object.values(item)) for (const p of op.parameters ?? []) if (p.in === 'path' && p.name === '*') p.name = 'path';
      return [url.replace('{*}', '{path}'), item];
    }),
  );
  return { ...doc, paths: renamed } as OpenApiObject;
}

export async function buildApp(
  gateway: Gateway,
  logger: Logger,
  audit: Logger | null = createAuditLog(gateway.config.audit),
): Promise<FastifyInstance> {
  const tls = gateway.config.listen.tls;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request comes from request-context.ts instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // A client's X-Request-Id only when short and plain (request-id.ts): it is in every log and audit line.
    requestIdHeader: false,
    genReqId: requestId,
    // Unparseable or late requests: Fastify's handler logged the raw bytes (a token) at trace.
    clientErrorHandler: clientErrorHandler(logger as FastifyBaseLogger),
    routerOptions: { maxParamLength: 2048 },
    // Bad percent-encoding and over-long path parameters, refused by the router, answer problem+json too.
    frameworkErrors: problemForFrameworkError,
    // Guard rails (limits.*): JSON bodies are small (the upload route sets its own limit); see the schema for why these timeouts.
    bodyLimit: gateway.config.limits.bodyBytes,
    connectionTimeout: gateway.config.limits.connectionTimeoutMs,
    requestTimeout: gateway.config.limits.requestTimeoutMs,
    keepAliveTimeout: gateway.config.limits.keepAliveTimeoutMs,
    // HTTPS when listen.tls is set, its files read now so that a bad path stops start-up.
    https: tls ? httpsOptions(tls) : null,
  }) as unknown as FastifyInstance; // an https.Server is an http.Server to everything the app does with it
  applyServerTimeouts(app.server, gateway.config.limits);
  registerJsonBodyParser(app);

  app.setValidatorCompiler(validatorCompiler);
  // The type provider's serializer, writing the agent's exact 64-bit integers (bigints) as JSON integers.
  app.setSerializerCompiler(exactSerializerCompiler);
  // Once closing, answers in flight end their connection: server.close() waits for every keep-alive socket.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // Answered before its body arrived (a 401, 403 or 413 decided first): Node would otherwise read and drop the
    // rest of the body, however slowly it comes, on a connection the client may keep. (light-my-request's
    // requests have no `complete`.)
    if (closing || request.raw.complete === false) reply.header('connection', 'close');
  });

  // Before the HTTP server waits for requests in flight: stop file transfers and close their handles while the
  // agent queue still takes commands (a long download would otherwise outlive the grace period). Gateway.close()
  // then makes a last attempt at any close a frozen guest refused, after thawing.
  app.addHook('preClose', async () => {
    await gateway.files.abortTransfers(gateway.config.shutdownGraceMs);
  });

  // A route without a declared permission is a bug: refuse to start rather than serve it unguarded later. So is
  // a route naming a domain outside a domain scope (domain-scope.ts): nothing would check the identity may touch it.
  app.addHook('onRoute', (route) => {
    // Swagger UI's routes (its page, assets and its own copy of the document) are public like /openapi.json,
    // so that auth.protectPublic covers them too.
    if (route.url.startsWith(DOCS_PREFIX)) route.config = { ...route.config, permission: 'public' };
    const permission = route.config?.permission;
    if (!permission || !PERMISSIONS.includes(permission)) {
      throw new Error(`route ${route.method} ${route.url} declares no permission in its config`);
    }
    if (route.url.startsWith('/domains/:domain') && !route.config?.domainScope) {
      throw new Error(`route ${route.method} ${route.url} names a domain outside a domain scope`);
    }
  });

  const requestDone = registerRequestContext(app);
  registerHttpMetrics(requestDone, gateway.metrics);
  registerQueryTokenRefusal(app);
  const refusals = registerRefusalLimit(app, gateway.config.limits.unauthenticated);
  registerAuthentication(app, gateway.config.auth.protectPublic, new Authenticator(gateway.config.auth), refusals.checkIdentity);
  registerAudit(app, audit, requestDone);
  registerProblemHandlers(app, refusals.rewrite);
  await registerRateLimit(app, gateway.config);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'qga-gateway',
        version: API_VERSION,
        description:
          'HTTP/REST resources for the QEMU guest agent of every libvirt domain. Errors are RFC 9457 problem+json with a stable `code`.',
      },
      tags: ROUTE_TAGS,
      components: {
        securitySchemes: {
          bearerToken: {
            type: 'http',
            scheme: 'bearer',
            description:
              "A token from `npm run token`; its identity needs the operation's x-permission as a scope, and may touch only the domains its patterns match.",
          },
        },
      },
    },
    transform: (args) => {
      const out = jsonSchemaTransform(args);
      const permission = args.route.config?.permission;
      const security = permission && permission !== 'public' ? { security: [{ bearerToken: [] }] } : {};
      return { ...out, schema: { ...out.schema, ...(permission ? { 'x-permission': permission } : {}), ...security } };
    },
    transformObject: (doc) => nameWildcards(pruneUnusedComponents(jsonSchemaTransformObject(doc))),
  });
  if (gateway.config.openapi.docs) {
    await app.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX });
  }
  app.get('/openapi.json', { config: { permission: 'public' }, schema: { hide: true } }, async () => app.swagger());

  for (const routes of ROUTE_MODULES) await app.register(routes(gateway));
  return app;
}
