// auth.protectPublic promises a token on /healthz, /readyz, /openapi.json and /docs. The Swagger UI routes
// (/docs, /docs/json, /docs/yaml, /docs/static/*) are registered without a permission, and the authentication hook
// returns early for a route without one ("no such route"), so they stay open: /docs/json is the whole API document.
import { describe, expect, it } from 'vitest';
import { startEnv, type Env } from '../support/guard-rail-env.js';

let env: Env | null = null;
describe('auth.protectPublic', () => {
  it('asks a token for the Swagger UI and its copy of the API document too', async () => {
    env = await startEnv({ any: { scopes: ['read'] } }, [{ name: 'web1' }], {
      auth: { mode: 'tokens', protectPublic: true, identities: [] },
    });
    // (identities were replaced above; the point is only what answers without a token)
    expect((await env.call(null, 'GET', '/openapi.json')).status).toBe(401);
    const open: string[] = [];
    for (const url of ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/static/index.html']) {
      const r = await env.call(null, 'GET', url);
      if (r.status !== 401)
        open.push(`${url} -> ${r.status}${url === '/docs/json' ? ` (${r.body.length} bytes, openapi ${JSON.parse(r.body).openapi})` : ''}`);
    }
    expect(open).toEqual([]);
  });
});
