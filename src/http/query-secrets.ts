// Secrets in the URL. A URL is written to logs (ours, a proxy's, the shell history), so a token there is a token
// leaked: one sent as access_token= (RFC 6750's query form), or any value shaped like one of ours (qgw_…), is
// refused before authentication, and the request log shows a query only as names the route knows with values
// that do not look like a token; everything else is [redacted].
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TOKEN_PREFIX } from '../auth/tokens.js';
import { PreAuthenticationRefusal } from '../auth/authorization-header.js';
import { truncate } from './problem.js';
import { splitUrl } from './url-parts.js';

/**
 * A token's prefix and most of its 43 base64url characters: the shape, not a word that happens to contain qgw_; or a
 * Keystone Fernet token (auth.keystone): base64url of a version byte 0x80 and a timestamp, so it starts gAAAAA; or a
 * Keystone JWS token (its token provider jws): a JWT, base64url JSON header and payload (both start eyJ, for `{"`)
 * and a signature, joined by dots. Only from the start of a base64url run: tried at every eyJ of a run such as
 * eyJeyJeyJ... (a URL's 16 KiB of it), the scan to the run's end made each test take over 100 ms.
 */
const TOKEN_LIKE = new RegExp(
  `${TOKEN_PREFIX}[A-Za-z0-9_-]{16,}|gAAAAA[A-Za-z0-9_-]{64,}|(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{16,}`,
);
const TOKENS_LIKE = new RegExp(TOKEN_LIKE.source, 'g');

/** The text with every token-shaped part replaced: for log and audit fields that come from the URL. */
export function withoutTokens(text: string): string {
  return text.replace(TOKENS_LIKE, '[redacted]');
}

export function looksLikeToken(text: string): boolean {
  return TOKEN_LIKE.test(text);
}
const TOKEN_PARAMETER = /^(access_token|x-auth-token|auth_token)$/i;
const PLAIN_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const REDACTED = '[redacted]';
/** The request log shows at most this many parameters, each value at most this long. */
const MAX_LOGGED_PARAMETERS = 16;
const MAX_LOGGED_VALUE = 256;

/** Whether any parameter is named access_token or holds (in its name or value, percent-decoded) a token-shaped string. */
export function queryCarriesToken(query: string): boolean {
  if (!query) return false;
  for (const [name, value] of new URLSearchParams(query)) {
    if (TOKEN_PARAMETER.test(name) || looksLikeToken(name) || looksLikeToken(value)) return true;
  }
  return false;
}

/** The names of the query parameters the request's route declares (its zod querystring schema). */
function declaredParameters(request: FastifyRequest): Set<string> {
  const schema = request.routeOptions.schema?.querystring;
  return new Set(schema instanceof z.ZodObject ? Object.keys(schema.shape) : []);
}

/** The URL for the request log: the path, and the query with undeclared or token-shaped parts redacted. */
export function loggableUrl(request: FastifyRequest): string {
  const url = splitUrl(request.url);
  const path = pathCarriesToken(url.path) ? REDACTED : url.path;
  const { query } = url;
  if (!query) return truncate(path);
  const declared = declaredParameters(request);
  const parts: string[] = [];
  let n = 0;
  for (const [name, value] of new URLSearchParams(query)) {
    if (n++ === MAX_LOGGED_PARAMETERS) {
      parts.push('…');
      break;
    }
    const shownName = PLAIN_NAME.test(name) && !looksLikeToken(name) ? name : REDACTED;
    const shownValue = declared.has(name) && !looksLikeToken(value) ? encodeURIComponent(truncate(value, MAX_LOGGED_VALUE)) : REDACTED;
    parts.push(`${shownName}=${shownValue}`);
  }
  return `${truncate(path)}?${parts.join('&')}`;
}

/** Whether the path, as sent or percent-decoded, holds a token-shaped string. */
function pathCarriesToken(path: string): boolean {
  if (looksLikeToken(path)) return true;
  try {
    return looksLikeToken(decodeURIComponent(path));
  } catch {
    return false; // not valid percent-encoding: the router refuses it
  }
}

/**
 * Refuses a token anywhere in the URL, first of all the request hooks that could act on it; counted with the
 * address's other refusals before authentication (refusal-limit.ts), so it is no free way to fill the audit.
 */
export function registerQueryTokenRefusal(app: FastifyInstance): void {
  // Callback-style (a throw here is the hook's error): an async hook costs a promise per request.
  app.addHook('onRequest', (request, _reply, next) => {
    const { path, query } = splitUrl(request.url);
    if (queryCarriesToken(query) || pathCarriesToken(path)) {
      throw new PreAuthenticationRefusal(
        'invalid_request',
        'a token in the URL is refused (URLs end up in logs): send it in the Authorization header as Bearer <token>',
      );
    }
    next();
  });
}
