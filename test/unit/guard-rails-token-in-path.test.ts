// a token in the URL's query is refused and redacted (query-secrets.ts), but only the query is looked at.
// The same token in the path (a client that pastes it into a domain id or a path by mistake, or a proxy rewriting
// /t/<token>/... URLs) is written as is to the request log (url, domain) and to the audit line (domain / path).
import { describe, expect, it } from 'vitest';
import { newToken } from '../../src/auth/tokens.js';
import { startEnv, type Env } from '../support/guard-rail-env.js';

let env: Env | null = null;
describe('a token-shaped string in the URL path', () => {
  it('is refused or redacted like one in the query, never logged', async () => {
    env = await startEnv({ reader: { scopes: ['read'], domains: ['web*'] } });
    const leaked = env.tokens.reader!;
    const other = newToken();
    const r1 = await env.call(leaked, 'GET', `/domains/${other}/agent/ping`);
    const r2 = await env.call(null, 'GET', `/domains/web1/files/${leaked}`);
    expect([r1.status, r2.status]).not.toContain(200);
    const logs = JSON.stringify(env.gw.logs) + JSON.stringify(env.gw.audit);
    expect({ other: logs.includes(other), leaked: logs.includes(leaked) }).toEqual({ other: false, leaked: false });
  });
});
