// The fleet view with authentication on, in a real browser: the page asks for a token, says so when one is refused,
// works with the right one, keeps it in the tab's sessionStorage only (a reload keeps it, another tab does not have
// it, localStorage never sees it), and forgets it on request.
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { waitFor } from '../support/fake-libvirtd.js';
import { fleetRows, launchBrowser, openPage, unexpected, waitInPage } from './support/browser.js';
import { startFleet, type Fleet } from './support/fleet.js';

const token = newToken();
const wrong = newToken();
let browser: Browser;
let fleet: Fleet;

beforeAll(async () => {
  browser = await launchBrowser();
  fleet = await startFleet(
    { local: [{ name: 'web1', ipv4: '192.0.2.31' }] },
    { auth: { mode: 'tokens', identities: [{ name: 'viewer', tokenSha256: tokenSha256(token), scopes: ['read'] }] } },
  );
});
afterAll(async () => {
  await browser?.close();
  await fleet?.close();
});

const storage = (w: { page: import('puppeteer-core').Page }) =>
  w.page.evaluate(() => ({
    session: Object.entries(sessionStorage),
    local: Object.entries(localStorage),
    cookies: document.cookie,
  }));

describe('the fleet view with tokens', () => {
  it('asks for a token, refuses a wrong one visibly, works with the right one and keeps it in this tab only', async () => {
    const w = await openPage(browser);
    await w.page.goto(`${fleet.url}/ui/`);
    await waitInPage(w.page, 'the token form', () => !document.getElementById('token-form')!.hidden);
    expect(
      await w.page.$eval('#token', (i) => ({
        type: (i as HTMLInputElement).type,
        label: (i as HTMLInputElement).labels?.[0]?.textContent,
      })),
    ).toEqual({
      type: 'password',
      label: expect.stringMatching(/token/i),
    });
    expect(await fleetRows(w.page)).toEqual([]);

    await w.page.type('#token', wrong);
    await w.page.click('#token-form button[type="submit"]');
    await waitInPage(w.page, 'the refusal', () => /refused/i.test(document.getElementById('token-note')!.textContent ?? ''));
    expect(await w.page.$eval('#token-form', (f) => (f as HTMLElement).hidden)).toBe(false);
    expect(await w.page.$eval('#fleet-error', (e) => ({ hidden: (e as HTMLElement).hidden, text: e.textContent }))).toMatchObject({
      hidden: false,
    });
    expect(await fleetRows(w.page)).toEqual([]);
    // A refused token is not kept, and the page asks nothing more until another is entered.
    expect((await storage(w)).session).toEqual([]);
    expect(await w.page.$eval('#live', (e) => e.textContent)).toMatch(/token/);
    const askedBefore = w.requests.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(w.requests.slice(askedBefore)).toEqual([]);

    await w.page.type('#token', token);
    await w.page.click('#token-form button[type="submit"]');
    await waitInPage(w.page, 'the fleet, live', () => {
      return document.querySelector('#fleet tr[data-domain="web1"] li') !== null && document.getElementById('live')!.className === 'live';
    });
    expect(await w.page.$eval('#token-form', (f) => (f as HTMLElement).hidden)).toBe(true);
    expect(await w.page.$eval('#fleet-error', (e) => (e as HTMLElement).hidden)).toBe(true);
    expect((await fleetRows(w.page))[0]).toMatchObject({
      name: 'web1',
      state: 'running',
      agent: 'connected',
      addresses: expect.arrayContaining(['192.0.2.31']),
    });
    // The token is neither left in the field nor anywhere but this tab's sessionStorage.
    expect(await w.page.$eval('#token', (i) => (i as HTMLInputElement).value)).toBe('');
    const kept = await storage(w);
    expect(kept.session.map(([, v]) => v)).toEqual([token]);
    expect(kept.local).toEqual([]);
    expect(kept.cookies).toBe('');
    expect(w.requests.filter((u) => u.includes(token))).toEqual([]);

    // A reload keeps it (same tab): the fleet comes without asking.
    const refusalsBefore = w.problems.filter((p) => p.kind === 'status').length;
    await w.page.reload();
    await waitInPage(w.page, 'the fleet after a reload', () => document.querySelector('#fleet tr[data-domain="web1"] li') !== null);
    expect(await w.page.$eval('#token-form', (f) => (f as HTMLElement).hidden)).toBe(true);
    expect(w.problems.filter((p) => p.kind === 'status')).toHaveLength(refusalsBefore);

    // Live events reach a page with a token (the event stream is authenticated too).
    fleet.agentEvent('local', 'web1', 'disconnected');
    await waitInPage(
      w.page,
      'agent disconnected',
      () => document.querySelector<HTMLElement>('[data-field="agent"]')?.innerText === 'disconnected',
    );
    fleet.agentEvent('local', 'web1', 'connected');

    // Another tab has its own sessionStorage: it asks again.
    const other = await openPage(browser);
    await other.page.goto(`${fleet.url}/ui/`);
    await waitInPage(other.page, 'the token form in another tab', () => !document.getElementById('token-form')!.hidden);
    expect((await storage(other)).session).toEqual([]);
    await other.page.close();

    // Forgetting it, with a button in view while the token is in use: asked again, nothing stored.
    const forget = await w.page.waitForSelector('#forget', { visible: true, timeout: 2000 });
    await forget!.click();
    await waitInPage(w.page, 'the form again', () => /forgotten/i.test(document.getElementById('token-note')!.textContent ?? ''));
    expect((await storage(w)).session).toEqual([]);
    expect(await w.page.evaluate(() => document.activeElement?.id)).toBe('token');
    // What the token showed is gone with it, and the stream is closed: an event changes nothing any more.
    expect(await fleetRows(w.page)).toEqual([]);
    expect(await w.page.$eval('#forget', (b) => (b as HTMLElement).hidden)).toBe(true);
    await waitFor(() => fleet.gw.gateway.events!.streamCount === 0, 5000, 'the page to close its event stream');

    // The only problems are the 401 answers the missing and wrong tokens earned, and the console's word for each.
    expect(w.problems.some((p) => p.kind === 'status' && p.text === '401')).toBe(true);
    expect(unexpected(w.problems, 401)).toEqual([]);
    await w.page.close();
  });
});
