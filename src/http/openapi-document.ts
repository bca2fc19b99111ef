// How the routes become the OpenAPI document (@fastify/swagger's options): the document's header, and what is
// added to each operation from what the gateway knows of it: its security, every problem status it can answer
// (openapi-problems.ts), its answers' descriptions and headers. Written for the tools that read it: generated
// clients (no input `default` that makes a field required, `examples` rather than 3.0's `example`, no custom
// `format`), linters (redocly.yaml) and Swagger UI.
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { FastifySchema } from 'fastify';
import { createJsonSchemaTransform, createJsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { Config } from '../config/schema.js';
import { generalProblemStatuses, needsToken, type RouteShape } from './openapi-problems.js';
import type { Permission } from './permissions.js';
import { PROBLEM_CONTENT_TYPE, problemDescription } from './problem.js';
import { ROUTE_TAGS } from './routes/index.js';

export const API_VERSION = '0.1.0';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What each JSON answer is, by status: the document's response descriptions (Fastify's schemas carry only the body). */
    responseDescriptions?: Record<number, string>;
  }
}

type Json = Record<string, unknown>;

/**
 * Every schema zod writes passes here. `default` moves into the description: openapi-typescript (and others) make
 * a property with a default required, so a client would have to send what the gateway fills in itself. 3.1 schemas
 * take `examples` (a list); `format: base64` is no format JSON Schema knows, `contentEncoding` says it.
 */
function clientFriendly({ jsonSchema }: { jsonSchema: Json }): void {
  if ('default' in jsonSchema) {
    const said = `Default: ${JSON.stringify(jsonSchema.default)}.`;
    jsonSchema.description = typeof jsonSchema.description === 'string' ? `${jsonSchema.description}. ${said}` : said;
    delete jsonSchema.default;
  }
  if ('example' in jsonSchema) {
    jsonSchema.examples = [jsonSchema.example];
    delete jsonSchema.example;
  }
  if (jsonSchema.format === 'base64') {
    delete jsonSchema.format;
    jsonSchema.contentEncoding = 'base64';
  }
}

const zodToJsonConfig = { override: clientFriendly as (ctx: { jsonSchema: object }) => void };
const schemaTransform = createJsonSchemaTransform({ zodToJsonConfig });
const schemaTransformObject = createJsonSchemaTransformObject({ zodToJsonConfig });

type Responses = Record<string, Json>;
type DescribedRoute = RouteShape & { descriptions: Record<number, string> | undefined };

/** A JSON answer as a response object: its description, and its schema as application/json. */
function describedJson(schema: Json, description: string): Json {
  return { description, content: { 'application/json': { schema } } };
}

/** A problem answer, as problem.ts's problemResponses declares one once zod's schema has become the component. */
function problemResponse(status: number): Json {
  return {
    description: problemDescription(status),
    content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } },
  };
}

/** The operation's responses: its own, described, with their headers, and every problem it can answer. */
function operationResponses(declared: Responses, given: FastifySchema['response'], route: DescribedRoute, config: Config) {
  const descriptions = route.descriptions ?? {};
  const out: Responses = {};
  for (const [status, schema] of Object.entries(declared)) {
    const description = descriptions[Number(status)];
    const headers = (given as Record<string, { headers?: Json }> | undefined)?.[status]?.headers;
    out[status] = { ...(description !== undefined ? describedJson(schema, description) : schema), ...(headers ? { headers } : {}) };
  }
  for (const status of generalProblemStatuses(route, config)) {
    const own = out[status] as { content?: Json } | undefined;
    // A status the route answers with its own body (/readyz's 503) can be a problem too (503 while shutting down).
    if (own?.content) own.content = { ...own.content, ...(problemResponse(status).content as Json) };
    else out[status] ??= problemResponse(status);
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => Number(a) - Number(b)));
}

/** A conditional GET's If-None-Match request header, its 200's ETag, and the 304 it may answer (conditional-get.ts). */
function conditional(response: Responses, headers: Json | undefined) {
  const ok = response['200'];
  if (ok)
    ok.headers = {
      ...(ok.headers as Json),
      ETag: { description: "The answer's entity tag: send it back in If-None-Match", type: 'string' },
    };
  const asked = (headers ?? { type: 'object', properties: {} }) as { properties: Json };
  return {
    headers: {
      ...asked,
      properties: {
        ...asked.properties,
        'if-none-match': { type: 'string', description: 'An ETag of an earlier answer: 304 with no body while it still matches' },
      },
    },
    response: { ...response, 304: { description: 'Not modified: the ETag given in If-None-Match still matches' } },
  };
}

/** zod registers an input and an output variant of every named schema; keep the ones referenced. */
function pruneUnusedComponents(doc: Json): Json {
  const { components, ...rest } = doc as { components?: { schemas?: Json } };
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
  return { ...doc, components: { ...components, schemas: kept } };
}

type Paths = Record<string, Record<string, { operationId?: string; parameters?: { in: string; name: string }[]; responses?: Responses }>>;

/**
 * Fastify's wildcard parameter is named '*'; the document calls it {path}, which clients can generate code for.
 * A HEAD operation's answers have headers and no content.
 */
function finishPaths(doc: Json): Json {
  const paths = doc.paths as Paths | undefined;
  if (!paths) return doc;
  const renamed = Object.fromEntries(
    Object.entries(paths).map(([url, item]) => {
      for (const [method, op] of Object.entries(item)) {
        if (url.includes('{*}')) for (const p of op.parameters ?? []) if (p.in === 'path' && p.name === '*') p.name = 'path';
        if (method === 'head') {
          // A HEAD route declared on its own (files) has its own operationId, which @fastify/swagger suffixes all the same.
          if (op.operationId?.endsWith('-head')) op.operationId = op.operationId.slice(0, -'-head'.length);
          for (const [status, r] of Object.entries(op.responses ?? {})) if (Number(status) < 400) delete r.content;
        }
      }
      return [url.replace('{*}', '{path}'), item];
    }),
  );
  return { ...doc, paths: renamed };
}

export function swaggerOptions(config: Config): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'qga-gateway',
        version: API_VERSION,
        description:
          'HTTP/REST resources for the QEMU guest agent of every libvirt domain. Errors are RFC 9457 problem+json with a stable `code`.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      // Relative: the gateway that serves this document, wherever it listens.
      servers: [{ url: '/', description: 'The gateway serving this document' }],
      tags: ROUTE_TAGS,
      components: {
        securitySchemes: {
          bearerToken: {
            type: 'http',
            scheme: 'bearer',
            description:
              "A token from `npm run token`; its identity needs the operation's x-permission as a scope, and may touch only the domains its patterns match.",
          },
          ...(config.auth.keystone
            ? {
                keystoneToken: {
                  type: 'apiKey',
                  in: 'header',
                  name: 'X-Auth-Token',
                  description:
                    'An OpenStack Keystone token (`openstack token issue`), validated by Keystone (auth.keystone): its roles map ' +
                    'to scopes; a project-scoped token may touch only the instances of its project, a system-scoped one every domain.',
                },
              }
            : {}),
        },
      },
    },
    transform: (args) => {
      const out = schemaTransform(args);
      const routeConfig = args.route.config;
      const permission = routeConfig?.permission as Permission | undefined;
      if (!permission || out.schema.hide) return out;
      const shape = { method: args.route.method as string, url: args.url, permission, descriptions: routeConfig?.responseDescriptions };
      const response = operationResponses((out.schema.response ?? {}) as Responses, args.schema.response, shape, config);
      return {
        ...out,
        schema: {
          ...out.schema,
          ...(routeConfig?.etag ? conditional(response, out.schema.headers as Json | undefined) : { response }),
          'x-permission': permission,
          // Stated either way: an operation without `security` would inherit a document-wide one.
          security: needsToken({ permission }, config) ? securityOf(config) : [],
        },
      };
    },
    transformObject: (doc) => finishPaths(pruneUnusedComponents(schemaTransformObject(doc) as Json)),
  };
}

/** Any one of the schemes the gateway accepts proves an identity: its bearer tokens, and Keystone's when configured. */
function securityOf(config: Config): Record<string, string[]>[] {
  return config.auth.keystone ? [{ bearerToken: [] }, { keystoneToken: [] }] : [{ bearerToken: [] }];
}
