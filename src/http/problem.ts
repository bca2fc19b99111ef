// RFC 9457 problem details: every error answer of the gateway, with its stable code.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_STATUS, ERROR_TITLES, GatewayError, type ErrorCode } from '../errors.js';
import { splitUrl } from './url-parts.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const errorCodes = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

export const problemSchema = z
  .object({
    type: z.string().describe('A URI naming the kind of problem: urn:qga-gateway:problem:<code>'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().describe('The request path'),
    code: z.enum(errorCodes).describe('Stable machine-readable error code'),
    requestId: z.string(),
    domain: z.string().optional(),
    host: z.string().optional().describe('The libvirt host concerned (host_unavailable, host_not_found)'),
    candidates: z.array(z.string()).optional().describe('domain_ambiguous: the qualified ids (host:name) that match; use one of them'),
    command: z.string().optional().describe('The guest-agent command involved'),
    agentClass: z.string().optional().describe("The agent's error class (agent_error)"),
    agentDesc: z.string().optional().describe("The agent's error description (agent_error)"),
    libvirtCode: z.number().int().optional().describe("libvirt's virErrorNumber"),
    retryAfter: z.number().int().optional().describe('Seconds; also sent as the Retry-After header'),
    agentVersion: z.string().optional().describe("qemu-ga's version (command_not_supported)"),
    bytesWritten: z
      .number()
      .int()
      .optional()
      .describe(
        'A failed upload: bytes written before it stopped: in place, they are in the file; atomic, they were in the temporary file, since removed',
      ),
    leftBehind: z
      .string()
      .optional()
      .describe('A failed atomic upload: the temporary file the gateway could not remove (the target is unchanged)'),
    issues: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('What is wrong with the request (invalid_request)'),
  })
  .meta({ id: 'Problem' });

export type Problem = z.infer<typeof problemSchema>;

/** What a problem answer of this status is: the codes it may carry. */
export function problemDescription(status: number): string {
  return `Problem: ${errorCodes.filter((c) => ERROR_STATUS[c] === status).join(', ')}`;
}

/** The error answers a route documents, keyed by status, each naming the codes it may carry. */
export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(
    [...new Set(statuses)].map((s) => [
      s,
      { description: problemDescription(s), content: { [PROBLEM_CONTENT_TYPE]: { schema: problemSchema } } },
    ]),
  );
}

/** A URL as long as the client made it would be echoed back in full: keep answers and logs bounded. */
export function truncate(text: string, max = 2048): string {
  return text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
}

function withoutTokenSent({ tokenSent: _, ...rest }: GatewayError['extras']) {
  return rest;
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, err: GatewayError, issues?: Problem['issues']): FastifyReply {
  const { retryAfter } = err.extras;
  const body: Problem = {
    type: `urn:qga-gateway:problem:${err.code}`,
    title: ERROR_TITLES[err.code],
    status: err.status,
    detail: err.message,
    instance: truncate(splitUrl(request.url).path),
    code: err.code,
    requestId: String(request.id),
    ...withoutTokenSent(err.extras),
    ...(issues ? { issues } : {}),
  };
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  // RFC 6750: a 401 names the scheme, and why the token was refused when one was sent.
  if (err.code === 'unauthenticated')
    reply.header(
      'www-authenticate',
      err.extras.tokenSent ? 'Bearer realm="qga-gateway", error="invalid_token"' : 'Bearer realm="qga-gateway"',
    );
  // Serialised here, so that a problem never depends on the route's response schema.
  return reply
    .code(err.status)
    .type(PROBLEM_CONTENT_TYPE)
    .serializer((p: unknown) => JSON.stringify(p))
    .send(body);
}

/**
 * Fastify's own errors keep their 4xx status: a body too large (413), a content type no parser takes (415), and
 * the rest of what it refuses in a request (bad JSON, a bad Content-Length: 400). Anything else is a fault: 500.
 * (No 404 or 503 comes this way: an unknown route goes to the not-found handler, and while closing Fastify
 * answers 503 itself, before any route or handler.)
 */
function fromFastifyError(err: FastifyError): GatewayError {
  const status = err.statusCode ?? 500;
  if (status === 413) return new GatewayError('payload_too_large', err.message);
  if (status === 415) return new GatewayError('unsupported_media_type', err.message);
  if (status >= 400 && status < 500) return new GatewayError('invalid_request', err.message);
  return new GatewayError('internal_error', 'internal error');
}

/**
 * Fastify's `frameworkErrors`: a URL that is not valid percent-encoded UTF-8, or a path parameter longer than
 * routerOptions.maxParamLength, is refused by the router before any route runs; without this, Fastify answers
 * those itself in plain JSON. The detail does not echo the URL, which may be megabytes long.
 */
export function problemForFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const detail =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? 'a path parameter is too long'
      : error.code === 'FST_ERR_BAD_URL'
        ? 'the URL is not valid percent-encoded UTF-8'
        : 'the request was refused';
  void sendProblem(request, reply, new GatewayError('invalid_request', detail));
}

/** Replaces an error before it is answered: the refusal limit (refusal-limit.ts) turns a 401 into a 429. */
export type ErrorRewrite = (request: FastifyRequest, err: GatewayError) => GatewayError;

export function registerProblemHandlers(app: FastifyInstance, rewrite: ErrorRewrite = (_request, err) => err): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const issues = error.validation.map((v) => ({
        path: `${error.validationContext ?? 'request'}${v.instancePath.replace(/\//g, '.')}`,
        message: v.message ?? 'invalid',
      }));
      const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      return sendProblem(request, reply, new GatewayError('invalid_request', detail), issues);
    }
    if (error instanceof GatewayError) {
      if (error.code === 'internal_error') request.log.error({ err: error }, 'internal error');
      return sendProblem(request, reply, rewrite(request, error));
    }
    const mapped = fromFastifyError(error);
    if (mapped.code === 'internal_error') request.log.error({ err: error }, 'unhandled error');
    // An internal error's message can carry anything; the client gets a generic detail.
    return sendProblem(request, reply, mapped);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new GatewayError('not_found', `no route for ${request.method} ${splitUrl(request.url).path}`)),
  );
}
