// The domain scope (src/http/domain-scope.ts): every /domains/{domain} route looks its domain up once per request,
// runs the checks that need no domain before that, and no such route can be declared outside a scope.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { buildApp } from '../../src/http/app.js';
import { RemoteProc } from '../../src/libvirt/procedures.js';
import { startEnv, type Env } from '../support/guard-rail-env.js';

let env: Env | null = null;

afterEach(async () => {
  await env?.close();
  env = null;
});

const ALL = ['read', 'admin', 'exec', 'files:read', 'files:write'] as const;

/** libvirt lookups of a domain by name or UUID so far. */
const lookups = () => env!.fake.callCount(RemoteProc.DOMAIN_LOOKUP_BY_NAME) + env!.fake.callCount(RemoteProc.DOMAIN_LOOKUP_BY_UUID);

describe('a domain route', () => {
  it('looks its domain up once per request, whether onRequest authorised it or not (no lookup cache)', async () => {
    env = await startEnv({ patterns: { scopes: ALL, domains: ['web*'] }, everywhere: { scopes: ALL } }, [{ name: 'web1' }], {
      domains: { cacheTtlMs: 0 },
    });
    for (const who of ['patterns', 'everywhere']) {
      for (const url of ['/domains/web1', '/domains/web1/agent/ping', '/domains/web1/hostname']) {
        const before = lookups();
        expect((await env.call(env.tokens[who]!, 'GET', url)).status, `${who} ${url}`).toBe(200);
        expect(lookups() - before, `${who} ${url}`).toBe(1);
      }
    }
  });

  it('runs its own checks before the lookup: they refuse the request whatever the domain, without asking libvirt', async () => {
    env = await startEnv({ everywhere: { scopes: ALL } }, [{ name: 'web1' }], { domains: { cacheTtlMs: 0 } });
    const token = env.tokens.everywhere!;
    const before = lookups();
    const raw = await env.call(token, 'POST', '/domains/nope/agent/commands', { execute: 'guest-sync', arguments: { id: 1 } });
    expect(raw.status).toBe(403);
    expect(raw.json()).toMatchObject({ code: 'command_forbidden' });
    const upload = await env.call(token, 'PUT', '/domains/nope/files/tmp/x?mode=append&offset=1', 'data');
    expect(upload.status).toBe(400);
    expect(upload.json().detail).toBe('offset and mode=append exclude each other');
    expect(lookups()).toBe(before);
    // Past its checks, an unknown domain is what it is.
    expect((await env.call(token, 'PUT', '/domains/nope/files/tmp/x', 'data')).status).toBe(404);
  });

  it('cannot be declared outside a domain scope: nothing would authorise its domain', async () => {
    const log = pino({ level: 'silent' });
    const gateway = new Gateway(parseConfig({}), log);
    const app = await buildApp(gateway, log, null);
    try {
      expect(() => app.get('/domains/:domain/unguarded', { config: { permission: 'read' } }, async () => 'no')).toThrow(
        /outside a domain scope/,
      );
    } finally {
      await app.close();
      await gateway.close(0);
    }
  });
});
