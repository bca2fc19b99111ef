// The application/json body parser, in place of Fastify's: the same secure-json-parse with the same
// prototype-poisoning refusals, after an iterative scan that refuses nesting deeper than any route needs.
// JSON.parse copes with 100,000 levels, but everything after it (zod, JSON.stringify of a raw command's
// arguments, the audit) recurses, and a RangeError there was a 500. Body size limits are unchanged: Fastify
// applies the route's bodyLimit, else limits.bodyBytes, before this parser sees the text.
import type { FastifyInstance } from 'fastify';
import { parse as secureJsonParse } from 'secure-json-parse';
import { GatewayError } from '../errors.js';

/** Deeper than any request body of the API (a raw command's arguments are a few levels at most). */
export const MAX_JSON_DEPTH = 64;

/** Fastify's defaults (onProtoPoisoning, onConstructorPoisoning), which its parser applied. */
const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const;

/** Whether `text` opens more than `max` objects or arrays at once. Brackets inside strings do not count. */
export function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */)
        i++; // the escaped character cannot end the string
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return false;
}

export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new GatewayError('invalid_request', 'the body is empty, yet the content type is application/json');
  if (nestedDeeperThan(text, MAX_JSON_DEPTH))
    throw new GatewayError('invalid_request', `the JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`);
  try {
    return secureJsonParse(text, null, PARSE_OPTIONS);
  } catch {
    // The parser's message quotes the body, which may hold a password: the client knows what it sent.
    throw new GatewayError('invalid_request', 'the body is not valid JSON (or sets __proto__ or constructor.prototype)');
  }
}

export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}
