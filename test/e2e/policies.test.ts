// Per-identity policies in the real process against the real guest1: an allowed file read and program run
// go through, a denied path, program or raw command is 403 forbidden.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, guest } from './support/guests.js';

const dom = guest((g) => g.name === 'guest1', 'guest1').name;
const token = newToken();
let gw: GatewayProcess;

async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${gw.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) as { code: string; detail: string; exitCode?: number } };
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway({
    rawCommands: { enabled: true },
    auth: {
      mode: 'tokens',
      identities: [
        {
          name: 'limited',
          tokenSha256: tokenSha256(token),
          scopes: ['read', 'files:read', 'exec', 'admin'],
          policies: { files: { read: { allow: ['/srv/qga-test/**'], deny: ['/etc/**'] } }, exec: { allow: ['/bin/true'] } },
        },
      ],
    },
  });
});
afterAll(async () => {
  await gw?.stop();
});

describe('policies against guest1', () => {
  it('reads an allowed file and refuses /etc/passwd', async () => {
    const ok = await call('GET', `/domains/${dom}/files/srv/qga-test/hello.txt`);
    expect(ok.status).toBe(200);
    expect(ok.text).toBe(`hello from ${dom}\n`);
    const denied = await call('GET', `/domains/${dom}/files/etc/passwd`);
    expect(denied.status).toBe(403);
    expect(denied.json().code).toBe('forbidden');
  });

  it('runs /bin/true and refuses /bin/sh, directly and through the raw endpoint', async () => {
    const ok = await call('POST', `/domains/${dom}/exec`, { path: '/bin/true', wait: { timeoutMs: 30_000 } });
    expect(ok.status).toBe(201);
    expect(ok.json().exitCode).toBe(0);
    const sh = await call('POST', `/domains/${dom}/exec`, { path: '/bin/sh', args: ['-c', 'id'] });
    expect(sh.status).toBe(403);
    expect(sh.json().code).toBe('forbidden');
    const raw = await call('POST', `/domains/${dom}/agent/commands`, { execute: 'guest-exec', arguments: { path: '/bin/sh' } });
    expect(raw.status).toBe(403);
    const rawOpen = await call('POST', `/domains/${dom}/agent/commands`, {
      execute: 'guest-file-open',
      arguments: { path: '/etc/passwd' },
    });
    expect(rawOpen.status).toBe(403);
  });
});
