// CORS in a real browser: a page of another origin (test/browser/support/other-origin.ts) calls the gateway's API
// with an Authorization header. With cors.origins naming that origin the browser's preflight passes and the page
// reads the answer, its X-Request-Id, a 401's problem and the event stream; an origin not named, and any origin with
// CORS off, is refused by the browser (fetch throws a TypeError) and the call itself never reaches the gateway.
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { launchBrowser, openPage, unexpected, type WatchedPage } from './support/browser.js';
import { startFleet, type Fleet } from './support/fleet.js';
import { startOtherOrigin, type GatewayCall, type OtherOrigin } from './support/other-origin.js';

const token = newToken();
const auth = { mode: 'tokens' as const, identities: [{ name: 'dashboard', tokenSha256: tokenSha256(token), scopes: ['read' as const] }] };
let browser: Browser;
let dashboard: OtherOrigin;
let stranger: OtherOrigin;
/** cors.origins names the dashboard's origin. */
let withCors: Fleet;
let withoutCors: Fleet;

beforeAll(async () => {
  browser = await launchBrowser();
  dashboard = await startOtherOrigin();
  stranger = await startOtherOrigin();
  withCors = await startFleet({ local: [{ name: 'web1', ipv4: '192.0.2.41' }] }, { auth, cors: { origins: [dashboard.origin] } });
  withoutCors = await startFleet({ local: [{ name: 'web1', ipv4: '192.0.2.41' }] }, { auth });
});
afterAll(async () => {
  await browser?.close();
  for (const s of [withCors, withoutCors, dashboard, stranger]) await s?.close();
});

async function pageOf(origin: OtherOrigin): Promise<WatchedPage> {
  const w = await openPage(browser);
  await w.page.goto(`${origin.origin}/`);
  expect(await w.page.evaluate(() => location.origin)).toBe(origin.origin);
  return w;
}

function call(w: WatchedPage, url: string, headers: Record<string, string> = { authorization: `Bearer ${token}` }): Promise<GatewayCall> {
  return w.page.evaluate(
    (u, h) => (window as unknown as { callGateway(u: string, h: object): Promise<GatewayCall> }).callGateway(u, h),
    url,
    headers,
  );
}

/** The gateway's log lines of requests to this path, as [method, status]. */
function seen(fleet: Fleet, path: string): [string, number][] {
  return fleet.gw.logs.filter((l) => l.msg === 'request' && l.url === path).map((l) => [l.method as string, l.statusCode as number]);
}

describe('a page of another origin', () => {
  it('calls the API with its token when cors.origins names its origin, and reads what the gateway exposes', async () => {
    const w = await pageOf(dashboard);
    expect(withCors.url).not.toContain(dashboard.origin);

    const list = await call(w, `${withCors.url}/domains`);
    expect(list).toMatchObject({ ok: true, status: 200 });
    expect(list.body.domains.map((d: { name: string }) => d.name)).toEqual(['web1']);
    // X-Request-Id is exposed: the page reads the gateway's own id of the call, the one its log has.
    const id = list.headers!['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(withCors.gw.logs.some((l) => l.msg === 'request' && l.url === '/domains' && l.method === 'GET' && l.reqId === id)).toBe(true);
    // The browser asked first (a preflight for the Authorization header), without the token, and was answered.
    expect(seen(withCors, '/domains')).toEqual([
      ['OPTIONS', 204],
      ['GET', 200],
    ]);
    // A header that is not exposed stays hidden from the page, though the gateway sent it.
    const direct = await fetch(`${withCors.url}/domains`, { headers: { authorization: `Bearer ${token}`, origin: dashboard.origin } });
    expect(direct.headers.get('date')).toBeTruthy();
    expect(list.headers!.date).toBeNull();

    // The page's own request id comes back (an allowed request header).
    const own = await call(w, `${withCors.url}/addresses`, { authorization: `Bearer ${token}`, 'x-request-id': 'dashboard-42' });
    expect(own).toMatchObject({ ok: true, status: 200, headers: { 'x-request-id': 'dashboard-42' } });
    expect(own.body.domains[0].interfaces.flatMap((i: any) => i.addresses.map((a: any) => a.address))).toContain('192.0.2.41');

    // A refusal is readable too: the page can tell a wrong token from a network failure.
    const wrong = await call(w, `${withCors.url}/domains`, { authorization: `Bearer ${newToken()}` });
    expect(wrong).toMatchObject({ ok: true, status: 401, body: { code: expect.any(String) } });
    expect(wrong.headers!['www-authenticate']).toMatch(/^Bearer/);

    // The event stream, read with fetch (EventSource cannot send the token).
    const events = await call(w, `${withCors.url}/events`);
    expect(events).toMatchObject({ ok: true, status: 200, headers: { 'content-type': expect.stringMatching(/^text\/event-stream/) } });
    expect(events.body).toMatch(/^retry: \d+\n/);

    expect(unexpected(w.problems, 401)).toEqual([]);
    await w.page.close();
  });

  it('is refused by the browser when cors.origins does not name its origin: the call never reaches the gateway', async () => {
    const w = await pageOf(stranger);
    const before = seen(withCors, '/hosts').length;
    const r = await call(w, `${withCors.url}/hosts`);
    expect(r).toMatchObject({ ok: false, error: 'TypeError' });
    // Only the preflight came, and it was answered without CORS headers.
    expect(seen(withCors, '/hosts').slice(before)).toEqual([['OPTIONS', 404]]);
    expect(w.problems.some((p) => p.kind === 'console' && /CORS/.test(p.text))).toBe(true);
    await w.page.close();
  });

  it('is refused by the browser when CORS is off, whatever the origin', async () => {
    const w = await pageOf(dashboard);
    const r = await call(w, `${withoutCors.url}/domains`);
    expect(r).toMatchObject({ ok: false, error: 'TypeError' });
    expect(seen(withoutCors, '/domains')).toEqual([['OPTIONS', 404]]);
    // A request that needs no preflight reaches it, but the browser keeps the answer from the page.
    const simple = await call(w, `${withoutCors.url}/healthz`, {});
    expect(simple).toMatchObject({ ok: false, error: 'TypeError' });
    expect(seen(withoutCors, '/healthz')).toEqual([['GET', 200]]);
    expect(w.problems.some((p) => p.kind === 'console' && /CORS/.test(p.text))).toBe(true);
    await w.page.close();
  });
});
