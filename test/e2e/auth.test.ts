// Authentication in the real process against the real guests: tokens from the config's hashes, scopes,
// domain patterns; development mode says so loudly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, guests } from './support/guests.js';

const [first, second] = guests.filter((g) => g.agent && g.running);
if (!first || !second) throw new Error('guests.json needs two running guests with an agent');
const reader = newToken();
const secondOnly = newToken();
let gw: GatewayProcess;

const get = async (path: string, token?: string) => {
  const res = await fetch(`${gw.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: (await res.json()) as any, auth: res.headers.get('www-authenticate') };
};

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway({
    auth: {
      mode: 'tokens',
      identities: [
        { name: 'reader', tokenSha256: tokenSha256(reader), scopes: ['read'] },
        { name: 'second-only', tokenSha256: tokenSha256(secondOnly), scopes: ['read', 'exec'], domains: [second.uuid] },
      ],
    },
  });
});
afterAll(async () => {
  await gw?.stop();
});

describe('bearer tokens against the real guests', () => {
  it('refuses a request without a token (401) and serves one with a token', async () => {
    const none = await get(`/domains/${first.name}/network-interfaces`);
    expect(none.status).toBe(401);
    expect(none.auth).toBe('Bearer realm="qga-gateway"');
    const ok = await get(`/domains/${first.name}/network-interfaces`, reader);
    expect(ok.status).toBe(200);
    expect(ok.body.interfaces.some((i: { mac: string }) => i.mac === first.mac)).toBe(true);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('keeps an identity to its scopes and to the domains its patterns match (by UUID here, asked by name)', async () => {
    expect((await get(`/domains/${second.name}/agent/ping`, secondOnly)).status).toBe(200);
    expect((await get(`/domains/${first.name}/agent/ping`, secondOnly)).status).toBe(403);
    const list = await get('/domains', secondOnly);
    expect(list.body.domains.map((d: { name: string }) => d.name)).toEqual([second.name]);
    const exec = await fetch(`${gw.url}/domains/${first.name}/exec`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reader}`, 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/bin/true' }),
    });
    expect(exec.status).toBe(403);
  });

  it('never logs a token', async () => {
    await get(`/domains/${first.name}`, reader);
    expect(gw.logs.join('\n')).not.toContain(reader);
  });
});

describe('development mode', () => {
  it('says loudly that nothing is authenticated', async () => {
    const dev = await startGateway();
    try {
      expect(dev.logs.some((l) => l.includes('DEVELOPMENT MODE'))).toBe(true);
      expect((await fetch(`${dev.url}/domains/${first.name}/agent/ping`)).status).toBe(200);
    } finally {
      await dev.stop();
    }
  });
});
