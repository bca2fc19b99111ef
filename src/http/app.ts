// The Fastify application: plugins, error handling, OpenAPI and the routes. Handlers reach libvirt only
// through the Gateway's services.
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
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
import { responseSerializerCompiler } from './serializer.js';
import { applyServerTimeouts } from './server-timeouts.js';
import { ROUTE_MODULES } from './routes/index.js';
import { swaggerOptions } from './openapi-document.js';
import { isCorsPreflightRoute, registerCors } from './cors.js';
import { isUiRoute, registerUi } from './ui.js';
import { lazyRequestLoggers } from './request-logger.js';

const DOCS_PREFIX = '/docs';

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
    childLoggerFactory: lazyRequestLoggers,
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
  // Answers written by code compiled from each route's schema (exact 64-bit integers as JSON integers), checked
  // against the schema as well under openapi.checkAnswers (serializer.ts).
  app.setSerializerCompiler(responseSerializerCompiler(gateway.config.openapi.checkAnswers));
  // Once closing, answers in flight end their connection: server.close() waits for every keep-alive socket.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (request, reply, payload, next) => {
    reply.header('x-request-id', request.id);
    // A guest file is served as application/octet-stream: no browser may sniff it into HTML or script.
    reply.header('x-content-type-options', 'nosniff');
    // Answered before its body arrived (a 401, 403 or 413 decided first): Node would otherwise read and drop the
    // rest of the body, however slowly it comes, on a connection the client may keep. (light-my-request's
    // requests have no `complete`.)
    if (closing || request.raw.complete === false) reply.header('connection', 'close');
    next(null, payload);
  });

  // Before the HTTP server waits for requests in flight: stop file transfers and close their handles while the
  // agent queue still takes commands (a long download would otherwise outlive the grace period). Gateway.close()
  // then makes a last attempt at any close a frozen guest refused, after thawing.
  app.addHook('preClose', async () => {
    await gateway.files.abortTransfers(gateway.config.shutdownGraceMs);
  });
  // Event streams never end by themselves: each sends its `closing` event and ends now, so that the server's close
  // (which waits for every response) does not wait for them.
  app.addHook('preClose', async () => gateway.events?.closeStreams());

  // A route without a declared permission is a bug: refuse to start rather than serve it unguarded later. So is
  // a route naming a domain outside a domain scope (domain-scope.ts): nothing would check the identity may touch it.
  // And a documented route without an operationId: generated clients name their methods after it.
  app.addHook('onRoute', (route) => {
    // Swagger UI's routes (its page, assets and its own copy of the document) are public like /openapi.json,
    // so that auth.protectPublic covers them too.
    if (route.url.startsWith(DOCS_PREFIX)) route.config = { ...route.config, permission: 'public' };
    // So are the fleet view's files (ui.ts), and the CORS plugin's catch-all OPTIONS route, whose hook answers a
    // preflight before authentication and whose handler answers anything else not found (cors.ts).
    if (isUiRoute(route.url) || isCorsPreflightRoute(route.method, route.url)) route.config = { ...route.config, permission: 'public' };
    const permission = route.config?.permission;
    if (!permission || !PERMISSIONS.includes(permission)) {
      throw new Error(`route ${route.method} ${route.url} declares no permission in its config`);
    }
    if (route.url.startsWith('/domains/:domain') && !route.config?.domainScope) {
      throw new Error(`route ${route.method} ${route.url} names a domain outside a domain scope`);
    }
    if (!route.url.startsWith(DOCS_PREFIX) && !route.schema?.hide && !route.schema?.operationId) {
      throw new Error(`route ${route.method} ${route.url} has no operationId in its schema`);
    }
  });

  const requestDone = registerRequestContext(app);
  registerHttpMetrics(requestDone, gateway.metrics);
  // Before every hook that may refuse a request: a preflight is answered without a token, and a refusal carries
  // the allowed origin's CORS headers so that the page can read it.
  await registerCors(app, gateway.config.cors);
  registerQueryTokenRefusal(app);
  const refusals = registerRefusalLimit(app, gateway.config.limits.unauthenticated);
  const authenticator = new Authenticator(gateway.config.auth, logger);
  app.addHook('onClose', async () => authenticator.keystone?.close());
  registerAuthentication(app, gateway.config.auth.protectPublic, authenticator, refusals.checkIdentity);
  registerAudit(app, audit, requestDone);
  registerProblemHandlers(app, refusals.rewrite);
  await registerRateLimit(app, gateway.config);

  await app.register(fastifySwagger, swaggerOptions(gateway.config));
  if (gateway.config.openapi.docs) {
    await app.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX });
  }
  app.get('/openapi.json', { config: { permission: 'public' }, schema: { hide: true } }, async () => app.swagger());
  await registerUi(app, gateway.config.ui.enabled);

  for (const routes of ROUTE_MODULES) await app.register(routes(gateway));
  return app;
}
