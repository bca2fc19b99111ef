// the per-identity rate limit counts in preHandler, and the refusal limit counts only 401s, so a 403 decided
// in the onRequest hook (a scope the token lacks, a domain it may not touch) is never counted by either. A valid
// low-privilege token can therefore send any number of requests, each costing a libvirt lookup (nothing caches a
// name that was not found) and an audit line, far past limits.rateLimit.
import { describe, expect, it } from 'vitest';
import { RemoteProc } from '../../src/libvirt/procedures.js';
import { startEnv, type Env } from '../support/guard-rail-env.js';

let env: Env | null = null;
describe('403 refusals and the per-identity rate limit', () => {
  it('a token refused 403 again and again is rate-limited like any other request of its identity', async () => {
    env = await startEnv({ low: { scopes: ['read'], domains: ['web*'] } }, [{ name: 'web1' }, { name: 'db1' }], {
      limits: { rateLimit: { max: 5, timeWindowMs: 60_000 }, unauthenticated: { max: 5, timeWindowMs: 60_000 } },
    });
    const lookupsBefore = env.fake.callCount(RemoteProc.DOMAIN_LOOKUP_BY_NAME);
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      // Alternately: a domain it may not touch (after a libvirt lookup), a name that does not exist (a lookup each
      // time), and a route whose scope it lacks.
      const url = i % 3 === 0 ? '/domains/db1/agent/ping' : i % 3 === 1 ? `/domains/probe-${i}/agent/ping` : '/domains/web1/exec';
      statuses.push(
        (await env.call(env.tokens.low!, i % 3 === 2 ? 'POST' : 'GET', url, i % 3 === 2 ? { path: '/bin/true' } : undefined)).status,
      );
    }
    const lookups = env.fake.callCount(RemoteProc.DOMAIN_LOOKUP_BY_NAME) - lookupsBefore;
    const audited = env.gw.audit.filter((l) => l.event === 'denied').length;
    // With max 5 per window, most of the 40 must have been answered 429, without a lookup or an audit line each.
    const seen = `${statuses.filter((s) => s === 429).length} x 429, ${lookups} lookups, ${audited} audit lines`;
    expect(
      { limited: statuses.filter((s) => s === 429).length >= 30, lookupsAtMost10: lookups <= 10, auditedAtMost10: audited <= 10 },
      seen,
    ).toEqual({
      limited: true,
      lookupsAtMost10: true,
      auditedAtMost10: true,
    });
  });
});
