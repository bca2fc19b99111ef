// Generated bad input for every route of the OpenAPI document (issue 4): wrong types, 1 MiB strings, odd Unicode,
// path tricks, enormous numbers, missing and extra properties, malformed and deeply nested JSON, wrong content
// types. Every answer must be below 500; every 4xx a problem+json with a code of the error table; and input the
// gateway refuses (invalid_request, payload_too_large, unsupported_media_type) must not have sent the agent
// anything, not even the guest-info capability probe: validation comes before any guest traffic. Inputs valid by
// chance may reach the agent, which answers them plausibly. 416 is left out of that check: whether a range fits
// needs the file's size.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPES } from '../../src/config/scopes.js';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { ERROR_STATUS, type ErrorCode } from '../../src/errors.js';
import { generateOpenApiText } from '../../src/http/openapi.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import { defaultAgentHandler, FakeLibvirtd, type AgentHandler } from '../support/fake-libvirtd.js';
import { fuzzRequests, type FuzzRequest, type OpenApiDoc } from '../support/fuzz-inputs.js';
import { GuestControlAgent } from '../support/guest-control-agent.js';
import { fakeGuestState, GUEST_FACT_COMMANDS, guestFactsAgent } from '../support/guest-facts-agent.js';
import { OPERATIONS_COMMANDS, operationsAgent } from '../support/operations-agent.js';
import { build } from '../support/harness.js';
import { injectAny } from '../support/inject.js';
import type { TestGateway } from '../support/test-gateway.js';

const SEED = 0x5eed_0004;
const INPUT_CODES = new Set<string>(['invalid_request', 'payload_too_large', 'unsupported_media_type']);

/** One agent that knows every command a route may send: files, facts and settings, exec and accounts, operations. */
function plausibleAgent(): AgentHandler {
  const files = new FakeGuestFiles();
  files.files.set('/etc/hostname', Buffer.from('web1\n'));
  const control = new GuestControlAgent();
  const facts = guestFactsAgent(fakeGuestState());
  const ops = operationsAgent();
  const factCommands = new Set<string>(GUEST_FACT_COMMANDS);
  const opsCommands = new Set<string>(
    OPERATIONS_COMMANDS.filter((c) => !['guest-info', 'guest-ping', 'guest-sync', 'guest-sync-delimited'].includes(c)),
  );
  return async (dom, cmd, timeout) => {
    if (cmd.execute === 'guest-info') {
      const names = new Set<string>();
      for (const h of [files.handler, control.handler, facts, ops.handler]) {
        const info = (await h(dom, cmd, timeout)) as { return: { supported_commands: { name: string }[] } };
        for (const c of info.return.supported_commands) names.add(c.name);
      }
      const noReply = (n: string) => /^guest-(shutdown|suspend-)/.test(n);
      return {
        return: {
          version: '10.0.2',
          supported_commands: [...names].map((name) => ({ name, enabled: true, 'success-response': !noReply(name) })),
        },
      };
    }
    if (cmd.execute.startsWith('guest-file-')) return files.handler(dom, cmd, timeout);
    if (factCommands.has(cmd.execute)) return facts(dom, cmd, timeout);
    if (opsCommands.has(cmd.execute)) return ops.handler(dom, cmd, timeout);
    if (/^guest-(exec|ssh-|set-user-password)/.test(cmd.execute)) return control.handler(dom, cmd, timeout);
    return defaultAgentHandler(dom, cmd, timeout);
  };
}

let fake: FakeLibvirtd;
let doc: OpenApiDoc;
let requests: FuzzRequest[];
const token = newToken();
let total = 0;

beforeAll(async () => {
  // A private, current copy of the document: the checked-in one may lag behind the routes.
  doc = JSON.parse(await generateOpenApiText()) as OpenApiDoc;
  requests = fuzzRequests(doc, SEED);
  fake = await FakeLibvirtd.start({ domains: [{ name: 'web1' }], agentHandler: plausibleAgent() });
});
afterAll(async () => {
  await fake?.stop();
});

/** Answers per status and code over both passes, to check that the run exercises both refusals and the agent. */
const seen = new Map<string, number>();
let reachedAgent = 0;

async function fuzz(gw: TestGateway, headers: Record<string, string>, list = requests, { refuseAll = false } = {}): Promise<string[]> {
  const failures: string[] = [];
  for (const r of list) {
    const before = fake.agentLog.length;
    const res = await injectAny(gw.app, {
      method: r.method as 'GET',
      url: r.url,
      headers: { ...r.headers, ...headers },
      payload: r.payload,
    });
    total++;
    const sent = fake.agentLog.slice(before).map((e) => e.execute);
    if (sent.length) reachedAgent++;
    // A HEAD answer has no body: its status and content type are what can be checked.
    const head = r.method === 'HEAD';
    const key = `${res.statusCode} ${res.statusCode >= 400 && !head ? String((res.json() as { code?: unknown }).code) : ''}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    const fail = (why: string) => failures.push(`${r.what} -> ${res.statusCode} ${res.body.slice(0, 200)}: ${why}`);
    if (res.statusCode >= 500) fail('5xx');
    if (res.statusCode < 400) {
      if (refuseAll) fail('not refused');
      continue;
    }
    if (!String(res.headers['content-type']).startsWith('application/problem+json')) {
      fail(`content-type ${res.headers['content-type']}`);
      continue;
    }
    if (head) continue;
    const code = (res.json() as { code?: unknown }).code;
    if (typeof code !== 'string' || ERROR_STATUS[code as ErrorCode] !== res.statusCode)
      fail(`code ${String(code)} does not match the status`);
    else if (INPUT_CODES.has(code) && sent.length) fail(`refused input, yet the agent received ${sent.join(', ')}`);
  }
  return failures;
}

describe('generated bad input on every route', () => {
  it('generates a reproducible set of requests covering every operation', () => {
    const again = fuzzRequests(doc, SEED);
    expect(again.map((r) => r.what + r.url)).toEqual(requests.map((r) => r.what + r.url));
    expect(requests.length).toBeGreaterThanOrEqual(1000);
  });

  it('never answers 5xx, always problem+json, and sends the agent nothing for refused input (development mode)', async () => {
    const { gw } = await build({ fake });
    expect(await fuzz(gw, {})).toEqual([]);
  }, 120_000);

  it('refuses JSON nested 1,000 and 100,000 deep with a 4xx problem+json on every JSON-body route, raw commands on', async () => {
    // Raw commands on, so that a raw command's arguments (a record of anything) get past validation to the
    // code that serialises them: where 100,000 nested arrays were a RangeError and a 500.
    const nested = requests.filter((r) => r.what.includes(': body nested') || r.what.includes('=nested '));
    expect(nested.some((r) => r.what.startsWith('POST /domains/{domain}/agent/commands: body arguments=nested'))).toBe(true);
    const { gw } = await build({ fake, config: { rawCommands: { enabled: true } } });
    expect(await fuzz(gw, {}, nested, { refuseAll: true })).toEqual([]);
  }, 120_000);

  it('answers a URL that is not UTF-8 and an over-long path parameter with problem+json, before authentication', async () => {
    const { gw } = await build({ fake, config: { auth: { mode: 'tokens', identities: [] } } });
    for (const url of ['/domains/%ED%A0%80', '/domains/%zz/agent', `/domains/${'a'.repeat(4096)}/os`]) {
      const res = await gw.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'invalid_request', status: 400 });
      // The detail does not echo a URL that may be megabytes long (instance is the path, as on every problem).
      expect((res.json() as { detail: string }).detail.length).toBeLessThan(100);
    }
  });

  it('does the same with tokens, as an identity holding every scope', async () => {
    const identities = [{ name: 'fuzzer', tokenSha256: tokenSha256(token), scopes: [...SCOPES], domains: ['*'] }];
    const { gw } = await build({ fake, config: { auth: { mode: 'tokens', identities } } });
    expect(await fuzz(gw, { authorization: `Bearer ${token}` })).toEqual([]);
    // No log line may carry the token.
    expect(JSON.stringify(gw.logs)).not.toContain(token);
    expect(total).toBeGreaterThanOrEqual(1000);
    if (process.env.FUZZ_STATS) console.info({ total, reachedAgent, answers: Object.fromEntries([...seen].sort()) });
    // Both sides were exercised: many refusals, and chance-valid input that the agent answered.
    expect(seen.get('400 invalid_request') ?? 0).toBeGreaterThan(total / 2);
    expect(reachedAgent).toBeGreaterThan(0);
  }, 120_000);
});
