// Shared set-up for the guard-rails-* tests: a gateway with one token per
// identity against the fake libvirtd, files and exec answered by the fakes. Built with the harness
// (harness.ts): closed after the test without an afterEach.
import type { Scope } from '../../src/config/scopes.js';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { FakeGuestFiles } from './fake-guest-files.js';
import type { AgentHandler, FakeLibvirtd } from './fake-libvirtd.js';
import { GuestControlAgent } from './guest-control-agent.js';
import { build } from './harness.js';
import type { TestGateway } from './test-gateway.js';

export interface IdentitySpec {
  scopes: readonly Scope[];
  domains?: string[];
  policies?: object;
}

export interface Env {
  fake: FakeLibvirtd;
  gw: TestGateway;
  files: FakeGuestFiles;
  control: GuestControlAgent;
  tokens: Record<string, string>;
  call(
    token: string | null,
    method: string,
    url: string,
    payload?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: string; headers: Record<string, unknown>; json: () => any }>;
  raw(token: string, execute: string, args?: object): ReturnType<Env['call']>;
  sent(): string[];
  /** Closes the gateway and stops the fake; the harness does it after the test anyway. */
  close(): Promise<void>;
}

export async function startEnv(
  specs: Record<string, IdentitySpec>,
  domains: { name: string; uuid?: string }[] = [{ name: 'web1' }],
  overrides: Record<string, unknown> = {},
): Promise<Env> {
  const files = new FakeGuestFiles();
  const control = new GuestControlAgent();
  const handler: AgentHandler = (dom, cmd, t) =>
    cmd.execute.startsWith('guest-file-') || cmd.execute === 'guest-info' ? files.handler(dom, cmd, t) : control.handler(dom, cmd, t);
  const tokens: Record<string, string> = {};
  const identities = Object.entries(specs).map(([name, s]) => {
    tokens[name] = newToken();
    return {
      name,
      tokenSha256: tokenSha256(tokens[name]!),
      scopes: [...s.scopes],
      domains: s.domains ?? ['*'],
      ...(s.policies ? { policies: s.policies } : {}),
    };
  });
  const { fake, gw }: { fake: FakeLibvirtd; gw: TestGateway } = await build({
    domains,
    agent: handler,
    config: { auth: { mode: 'tokens', identities } as never, rawCommands: { enabled: true }, ...overrides },
  });
  const call: Env['call'] = async (token, method, url, payload, extra = {}) => {
    const headers: Record<string, string> = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
    if (method === 'PUT' && !headers['content-type']) headers['content-type'] = 'application/octet-stream';
    const res = await gw.app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as string }),
    });
    return { status: res.statusCode, body: res.body, headers: res.headers as Record<string, unknown>, json: () => res.json() };
  };
  return {
    fake,
    gw,
    files,
    control,
    tokens,
    call,
    raw: (token, execute, args) => call(token, 'POST', '/domains/web1/agent/commands', { execute, ...(args ? { arguments: args } : {}) }),
    sent: () => fake.agentLog.map((e) => e.execute).filter((c) => c !== 'guest-info'),
    close: async () => {
      await gw.close();
      await fake.stop();
    },
  };
}
