// The fleet view at /ui: the static files of ui/ (plain ES modules, HTML and CSS: nothing is built, nothing comes
// from elsewhere), served like /docs as public routes hidden from the API document. The page holds no data: every
// fact it shows comes from the public API, called with the visitor's token (kept in the tab's sessionStorage).
// A strict Content-Security-Policy keeps it to its own files and its own origin.
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

export const UI_PREFIX = '/ui';
/** ui/ at the top of the checkout or the image: from src/http/ (tsx) and dist/http/ (built) alike. */
export const UI_ROOT = fileURLToPath(new URL('../../ui/', import.meta.url));

export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Whether a route belongs to the fleet view (public, hidden from the document). */
export function isUiRoute(url: string): boolean {
  return url === UI_PREFIX || url.startsWith(`${UI_PREFIX}/`);
}

export async function registerUi(app: FastifyInstance, enabled: boolean): Promise<void> {
  if (!enabled) return;
  await app.register(async (ui) => {
    ui.addHook('onSend', async (_request, reply) => {
      reply.header('content-security-policy', UI_CSP);
      reply.header('referrer-policy', 'no-referrer');
      // Revalidated on every load (ETag): a new version of the gateway is never mixed with cached old modules.
      reply.header('cache-control', 'no-cache');
    });
    ui.get(UI_PREFIX, { config: { permission: 'public' }, schema: { hide: true } }, (_request, reply) =>
      reply.redirect(`${UI_PREFIX}/`, 302),
    );
    // One route per file found at start-up (no wildcard route): anything else under /ui/ is the usual 404.
    await ui.register(fastifyStatic, {
      root: UI_ROOT,
      prefix: `${UI_PREFIX}/`,
      wildcard: false,
      decorateReply: false,
      index: ['index.html'],
    });
  });
}
