// Conditional GET (RFC 9110 §13.1.2): an ETag on the answers of the routes that ask for it (config.etag), and 304
// Not Modified when the client's If-None-Match still matches, so that a dashboard polling /domains or /addresses
// gets an empty answer while nothing changed. @fastify/etag hashes the body (a strong ETag: same bytes, same tag);
// a route whose body also carries what does not change its meaning (/addresses: elapsedMs, cached) sets a weak
// one of its own over the rest (weakEtag), which the plugin then compares in the same way.
import { hash } from 'node:crypto';
import fastifyEtag from '@fastify/etag';
import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's GET answers carry an ETag and honour If-None-Match (registered in a scope of withEtags). */
    etag?: true;
  }
}

/** Registers the ETag hook in this (encapsulated) scope: only its routes get ETags. */
export async function withEtags(scope: FastifyInstance): Promise<void> {
  // The plugin's own sha1 (createHash per answer) gives the same tags at twice the cost of the one-shot hash.
  const recent = new RecentTags();
  await scope.register(fastifyEtag, { hashFn: (payload) => recent.tagOf(payload) });
}

/** Bodies remembered per scope, and the largest remembered: a few polls' answers, not a cache of everything. */
const RECENT_BODIES = 8;
const RECENT_BODY_CHARS = 16 * 1024;

/**
 * The tags of the last few bodies answered: a dashboard polling the same resource gets the same body again, and
 * comparing it with the one remembered costs a fraction of hashing it anew (about 4 % of a cached answer's CPU).
 */
class RecentTags {
  private readonly tags = new Map<string, string>();

  tagOf(payload: string | Buffer): string {
    if (typeof payload !== 'string' || payload.length > RECENT_BODY_CHARS) return hash('sha1', payload, 'base64');
    let tag = this.tags.get(payload);
    if (tag !== undefined) return tag;
    tag = hash('sha1', payload, 'base64');
    if (this.tags.size >= RECENT_BODIES) this.tags.delete(this.tags.keys().next().value!);
    this.tags.set(payload, tag);
    return tag;
  }
}

/** A weak ETag over what a body means (JSON of `meaning`), for a body with parts that differ from call to call. */
export function weakEtag(meaning: unknown): string {
  return weakEtagOfText(JSON.stringify(meaning));
}

/** The same, over a text that already says what the body means (one made of parts kept between calls). */
export function weakEtagOfText(meaning: string): string {
  return `W/"${hash('sha1', meaning, 'base64url')}"`;
}
