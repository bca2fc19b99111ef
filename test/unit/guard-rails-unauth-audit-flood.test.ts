// limits.unauthenticated counts 401s and double Authorization headers per address, so that a flood without a
// valid token costs the gateway at most one audit line per window. A request refused earlier than authentication,
// with 400, is neither counted nor limited, yet audited when its method is not GET/HEAD: a token in the query
// (query-secrets.ts refuses it in an onRequest hook that runs before authentication). Any client, without a token,
// writes one audit line per request, as fast as it likes.
import { describe, expect, it } from 'vitest';
import { startEnv, type Env } from '../support/guard-rail-env.js';

let env: Env | null = null;
describe('an unauthenticated flood', () => {
  it('is limited per address and audited once per window, however it is refused', async () => {
    env = await startEnv({ someone: { scopes: ['read'] } }, [{ name: 'web1' }], {
      limits: { rateLimit: { max: 0 }, unauthenticated: { max: 5, timeWindowMs: 60_000 } },
    });
    const statuses = new Map<number, number>();
    for (let i = 0; i < 100; i++) {
      const r = await env.call(null, 'POST', `/domains/web1/exec?access_token=x${i}`, { path: '/bin/true' });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    const lines = env.gw.audit.length;
    expect(lines, `statuses ${JSON.stringify(Object.fromEntries(statuses))}`).toBeLessThanOrEqual(6);
  });
});
