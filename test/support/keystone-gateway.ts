// A test gateway against the fake libvirtd whose auth.keystone points at a fake Keystone (fake-keystone.ts), for the
// Keystone identity tests: one Nova instance in each recorded project (alice's and bob's) and a domain without Nova
// metadata. `as(token)` calls the gateway with that X-Auth-Token.
import { onTestFinished } from 'vitest';
import type { Scope } from '../../src/config/scopes.js';
import { FakeKeystone, recordedProjectId } from './fake-keystone.js';
import type { AgentHandler } from './fake-libvirtd.js';
import { build } from './harness.js';
import { novaInstance } from './nova-fixtures.js';

export const PROJECT_A = { id: recordedProjectId('alice-project'), name: 'project-a' };
export const PROJECT_B = { id: recordedProjectId('bob-project'), name: 'project-b' };

export interface KeystoneGatewayOptions {
  /** Merged over auth.keystone's defaults (the fake's URL and service user, two roles, a one-minute cache). */
  keystone?: Record<string, unknown>;
  /** auth.identities (bearer tokens) beside Keystone; none by default. */
  identities?: { name: string; tokenSha256: string; scopes: Scope[]; domains?: string[] }[];
  /** Top-level config merged over the rest. */
  config?: Record<string, unknown>;
  agent?: AgentHandler;
}

export async function buildWithKeystone(opts: KeystoneGatewayOptions = {}) {
  const ks = new FakeKeystone();
  await ks.start();
  onTestFinished(() => ks.stop());
  const h = await build({
    ...(opts.agent ? { agent: opts.agent } : {}),
    domains: [
      { name: 'instance-0000000a', metadata: novaInstance('web-a', PROJECT_A) },
      { name: 'instance-0000000b', metadata: novaInstance('web-b', PROJECT_B) },
      { name: 'plain' },
    ],
    config: {
      auth: {
        mode: 'tokens',
        identities: opts.identities ?? [],
        keystone: {
          url: ks.url,
          service: { username: 'qga-gateway', password: ks.servicePassword, projectName: 'service' },
          roles: { admin: ['read', 'files:read', 'admin', 'exec'], member: ['read', 'files:read'] },
          cacheTtlMs: 60_000,
          ...opts.keystone,
        },
      },
      ...opts.config,
    },
  });
  const as = (token: string) => (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
    h.call(method, url, payload, { 'x-auth-token': token });
  return { ...h, ks, as };
}
