// The fleet view in a real browser (Debian's chromium, headless) against two fake libvirtds behind one gateway:
// /ui loads with no console error, CSP violation or failed request; the table lists each host's domains with their
// state, agent state and addresses as the API reports them; libvirt's events change a row while the page stays
// loaded; a domain's page shows its OS, file systems and interfaces; a phone's width needs no sideways scrolling.
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LifecycleEvent } from '../../src/libvirt/protocol.js';
import { DomainState } from '../support/fake-libvirtd.js';
import { fleetRows, launchBrowser, openPage, PHONE, waitForCell, waitInPage, type WatchedPage } from './support/browser.js';
import { startFleet, type Fleet } from './support/fleet.js';

let browser: Browser;
let fleet: Fleet;

beforeAll(async () => {
  browser = await launchBrowser();
  fleet = await startFleet(
    {
      alpha: [
        { name: 'web1', ipv4: '192.0.2.11' },
        { name: 'db1', ipv4: '192.0.2.12' },
        { name: 'off1', state: DomainState.SHUTOFF, id: -1, agent: 'disconnected' },
      ],
      beta: [{ name: 'web1', ipv4: '198.51.100.21' }],
    },
    // Addresses read when an agent connects (and, not within these tests, every minute): the addresses events.
    { events: { addressesPollMs: 60_000 } },
  );
});
afterAll(async () => {
  await browser?.close();
  await fleet?.close();
});

/** What the API itself says: the table must show exactly this. */
async function apiFleet() {
  const get = async (path: string) => (await fetch(`${fleet.url}${path}`)).json() as Promise<any>;
  const [domains, addresses] = await Promise.all([get('/domains'), get('/addresses')]);
  return (domains.domains as any[]).map((d) => {
    const a = (addresses.domains as any[]).find((x) => x.host === d.host && x.uuid === d.uuid);
    const ips = a?.ok ? (a.interfaces as any[]).flatMap((i) => i.addresses.map((x: { address: string }) => x.address)) : [];
    return {
      host: d.host as string,
      name: d.name as string,
      state: d.state as string,
      agent: d.agentState as string,
      ips: ips as string[],
    };
  });
}

async function openFleet(viewport?: Parameters<typeof openPage>[1]): Promise<WatchedPage> {
  const w = await openPage(browser, viewport);
  await w.page.goto(`${fleet.url}/ui/`, { waitUntil: 'load' });
  await waitInPage(w.page, 'the fleet table and the live stream', () => {
    return document.querySelectorAll('#fleet tr[data-domain]').length > 0 && document.getElementById('live')?.className === 'live';
  });
  return w;
}

describe('the fleet view', () => {
  it('loads with no console error, CSP violation or failed request, and lists the domains by host as the API does', async () => {
    const w = await openFleet();
    const expected = await apiFleet();
    expect(expected.filter((d) => d.ips.length > 0)).toHaveLength(3);
    await waitInPage(w.page, 'the addresses', () => document.querySelectorAll('#fleet [data-field="addresses"] li').length >= 3);
    const rows = await fleetRows(w.page);
    expect(rows.map((r) => ({ host: r.host, name: r.name, state: r.state, agent: r.agent }))).toEqual(
      expected
        .map((d) => ({ host: d.host, name: d.name, state: d.state, agent: d.agent }))
        .sort((a, b) => (a.host === b.host ? a.name.localeCompare(b.name) : a.host.localeCompare(b.host))),
    );
    for (const d of expected) {
      const row = rows.find((r) => r.host === d.host && r.name === d.name)!;
      // Every address the agent reported, nothing else.
      expect(row.addresses.sort(), `${d.host}/${d.name}`).toEqual([...d.ips].sort());
    }
    expect(rows.find((r) => r.host === 'alpha' && r.name === 'web1')!.addresses).toContain('192.0.2.11');
    expect(rows.find((r) => r.host === 'beta' && r.name === 'web1')!.addresses).toContain('198.51.100.21');
    expect(rows.find((r) => r.name === 'off1')).toMatchObject({ state: 'shutoff', agent: 'disconnected', addresses: [] });
    // Each host a group of its own, headed by its name.
    const groups = await w.page.evaluate(() =>
      [...document.querySelectorAll('#fleet tbody[data-host] th[scope="rowgroup"]')].map((th) => th.textContent),
    );
    expect(groups).toEqual([expect.stringContaining('alpha'), expect.stringContaining('beta')]);

    // Everything it loaded came from the gateway's own origin.
    expect(w.requests.length).toBeGreaterThan(4);
    expect(w.requests.filter((u) => !u.startsWith(`${fleet.url}/`))).toEqual([]);
    expect(w.problems).toEqual([]);
    // The watch on the page works: an error it makes is seen.
    await w.page.evaluate(() => console.error('probe'));
    await waitInPage(w.page, 'nothing', () => true);
    expect(w.problems.map((p) => p.text)).toEqual(['probe']);
    await w.page.close();
  });

  it("changes a row as libvirt's events come, without a reload, keeping the keyboard focus", async () => {
    const w = await openFleet();
    const web1 = { host: 'alpha', domain: 'web1' };
    const fake = fleet.fakes.get('alpha')!;
    // A keyboard user on web1's link: re-drawing the table must not throw the focus away.
    await w.page.focus('#fleet tbody[data-host="alpha"] tr[data-domain="web1"] a');
    const focused = () =>
      w.page.evaluate(() => {
        const a = document.activeElement as HTMLElement;
        return `${a.closest<HTMLElement>('tbody')?.dataset.host}/${a.textContent}`;
      });
    // The page would lose this if it reloaded.
    const timeOrigin = await w.page.evaluate(() => performance.timeOrigin);

    fleet.agentEvent('alpha', 'web1', 'disconnected');
    await waitForCell(w.page, { ...web1, field: 'agent' }, 'disconnected');
    expect(await focused()).toBe('alpha/web1');
    expect(await w.page.$eval('#announce', (e) => e.textContent)).toBe('web1: agent disconnected.');
    // The other host's web1 is another domain: untouched.
    expect((await fleetRows(w.page)).find((r) => r.host === 'beta' && r.name === 'web1')).toMatchObject({ agent: 'connected' });

    fake.setState('web1', DomainState.PAUSED, 1);
    fake.emitLifecycle('web1', LifecycleEvent.SUSPENDED, 0);
    await waitForCell(w.page, { ...web1, field: 'state' }, 'paused');
    fake.setState('web1', DomainState.RUNNING, 1);
    fake.emitLifecycle('web1', LifecycleEvent.RESUMED, 0);
    await waitForCell(w.page, { ...web1, field: 'state' }, 'running');

    // The agent comes back with another address: the gateway reads it (an addresses event), the row shows it.
    fleet.setIpv4('alpha', 'web1', '192.0.2.99');
    fleet.agentEvent('alpha', 'web1', 'connected');
    await waitForCell(w.page, { ...web1, field: 'agent' }, 'connected');
    await waitForCell(w.page, { ...web1, field: 'addresses' }, '192.0.2.99', { contains: true });
    expect((await fleetRows(w.page)).find((r) => r.host === 'alpha' && r.name === 'web1')!.addresses).not.toContain('192.0.2.11');

    // A domain defined and started appears; undefined, it goes.
    const added = fake.addDomain({ name: 'new1' });
    fake.emitLifecycle(added, LifecycleEvent.DEFINED, 0);
    fake.emitLifecycle(added, LifecycleEvent.STARTED, 0);
    await waitForCell(w.page, { host: 'alpha', domain: 'new1', field: 'state' }, 'running');
    fake.setState('new1', DomainState.SHUTOFF, 1);
    fake.emitLifecycle('new1', LifecycleEvent.STOPPED, 0);
    await waitForCell(w.page, { host: 'alpha', domain: 'new1', field: 'state' }, 'shutoff');
    fake.emitLifecycle(fake.removeDomain('new1'), LifecycleEvent.UNDEFINED, 0);
    await waitInPage(w.page, 'new1 gone', () => !document.querySelector('#fleet tr[data-domain="new1"]'));

    expect(await focused()).toBe('alpha/web1');
    expect(await w.page.evaluate(() => performance.timeOrigin)).toBe(timeOrigin);
    expect(w.requests.filter((u) => u.endsWith('/ui/'))).toHaveLength(1);
    expect(w.problems).toEqual([]);
    await w.page.close();
  });

  it("shows a domain's OS, file systems and interfaces on its own page", async () => {
    const w = await openFleet();
    const uuid = fleet.fakes.get('alpha')!.domain('db1').uuid;
    const get = async (path: string) => (await fetch(`${fleet.url}/domains/alpha:${uuid}${path}`)).json() as Promise<any>;
    const [os, fs, nics] = await Promise.all([get('/os'), get('/filesystems'), get('/network-interfaces')]);
    await w.page.click('#fleet tbody[data-host="alpha"] tr[data-domain="db1"] a');
    await waitInPage(w.page, 'the domain page', () => !document.getElementById('domain-view')!.hidden);
    await waitInPage(w.page, 'its three sections', () =>
      ['domain-os', 'domain-filesystems', 'domain-interfaces'].every((id) => !document.getElementById(id)?.innerText.includes('Loading')),
    );
    const text = (id: string) => w.page.$eval(`#${id}`, (e) => (e as HTMLElement).innerText);
    expect(await w.page.$eval('#domain-title', (e) => e.textContent)).toBe('db1');
    expect(await w.page.evaluate(() => location.hash)).toBe(`#/domain/alpha/${uuid}`);
    expect(await w.page.evaluate(() => document.activeElement?.id)).toBe('domain-title');
    expect(await text('domain-os')).toContain(os.os.prettyName);
    expect(await text('domain-os')).toContain(os.os.kernelRelease);
    const fsText = await text('domain-filesystems');
    expect(fs.filesystems.length).toBeGreaterThan(0);
    for (const f of fs.filesystems) expect(fsText).toContain(f.mountpoint);
    const nicText = await text('domain-interfaces');
    for (const i of nics.interfaces) {
      expect(nicText).toContain(i.name);
      for (const a of i.addresses) expect(nicText).toContain(`${a.address}/${a.prefix}`);
    }
    expect(nicText).toContain('192.0.2.12');
    // The page's summary is live too.
    const summaryAgent = () =>
      w.page.$eval('#domain-summary', (dl) => {
        const dt = [...dl.querySelectorAll('dt')].find((t) => t.textContent === 'Agent');
        return dt?.nextElementSibling?.textContent;
      });
    expect(await summaryAgent()).toBe('connected');
    fleet.agentEvent('alpha', 'db1', 'disconnected');
    await waitInPage(w.page, 'the summary to say disconnected', () =>
      document.getElementById('domain-summary')!.textContent!.includes('disconnected'),
    );
    expect(await summaryAgent()).toBe('disconnected');
    fleet.agentEvent('alpha', 'db1', 'connected');
    // Back to the list, which is still live.
    await w.page.click('#domain-view a[href="#/"]');
    await waitInPage(w.page, 'the fleet again', () => !document.getElementById('fleet-view')!.hidden);
    expect(w.problems).toEqual([]);
    await w.page.close();
  });

  it("does not ask a stopped domain's agent, and fills its page once the domain runs and its agent connects", async () => {
    const w = await openFleet();
    const fake = fleet.fakes.get('alpha')!;
    const uuid = fake.domain('off1').uuid;
    await w.page.click('#fleet tbody[data-host="alpha"] tr[data-domain="off1"] a');
    const sections = () =>
      w.page.evaluate(() => ['domain-os', 'domain-filesystems', 'domain-interfaces'].map((id) => document.getElementById(id)!.innerText));
    await waitInPage(w.page, 'the sections', () => !document.getElementById('domain-os')!.innerText.includes('Loading'));
    expect(await sections()).toEqual(Array(3).fill('Not available: the domain is shutoff.'));
    // Nothing was asked that could only fail (no 409 in the console either).
    expect(w.requests.filter((u) => u.includes(uuid))).toEqual([]);

    fake.setState('off1', DomainState.RUNNING, 1);
    fake.emitLifecycle('off1', LifecycleEvent.STARTED, 0);
    await waitInPage(w.page, 'the agent to be awaited', () =>
      document.getElementById('domain-os')!.innerText.includes('agent is not connected'),
    );
    fleet.agentEvent('alpha', 'off1', 'connected');
    await waitInPage(w.page, 'the OS, once the agent is there', () => document.querySelector('#domain-os dl') !== null);
    await waitInPage(w.page, 'the interfaces', () => document.querySelector('#domain-interfaces table') !== null);
    expect((await sections())[0]).toContain('Debian GNU/Linux 13');
    expect(w.requests.filter((u) => u.includes(uuid)).length).toBe(3);

    // Back as it was, for the other tests.
    fake.setState('off1', DomainState.SHUTOFF, 1);
    fake.emitLifecycle('off1', LifecycleEvent.STOPPED, 0);
    fleet.agentEvent('alpha', 'off1', 'disconnected');
    await waitInPage(w.page, 'the summary to say shutoff', () => document.getElementById('domain-summary')!.innerText.includes('shutoff'));
    expect(w.problems).toEqual([]);
    await w.page.close();
  });

  it('is usable at a phone width: no sideways scrolling, every cell labelled', async () => {
    const w = await openFleet(PHONE);
    await waitInPage(w.page, 'the addresses', () => document.querySelectorAll('#fleet [data-field="addresses"] li').length >= 3);
    const width = () =>
      w.page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    const fleetWidth = await width();
    expect(fleetWidth.client).toBe(PHONE.width);
    expect(fleetWidth.scroll).toBeLessThanOrEqual(fleetWidth.client);
    // Cells are stacked and say what they are.
    const labels = await w.page.evaluate(() =>
      [...document.querySelectorAll('#fleet tr[data-domain] td')].map((td) => getComputedStyle(td, '::before').content),
    );
    expect(new Set(labels)).toEqual(new Set(['"State: "', '"Agent: "', '"Addresses: "']));
    const uuid = fleet.fakes.get('alpha')!.domain('web1').uuid;
    await w.page.goto(`${fleet.url}/ui/#/domain/alpha/${uuid}`);
    await w.page.reload();
    await waitInPage(w.page, 'the domain page', () =>
      ['domain-os', 'domain-filesystems', 'domain-interfaces'].every((id) => document.querySelector(`#${id} dl, #${id} table`)),
    );
    const domainWidth = await width();
    expect(domainWidth.scroll).toBeLessThanOrEqual(domainWidth.client);
    expect(w.problems).toEqual([]);
    await w.page.close();
  });

  it('is accessible in the basics: language, labelled controls, table headers, live region', async () => {
    const w = await openFleet();
    const facts = await w.page.evaluate(() => ({
      lang: document.documentElement.lang,
      title: document.title,
      h1: document.querySelectorAll('h1').length,
      colHeaders: [...document.querySelectorAll('#fleet thead th')].map((th) => th.getAttribute('scope')),
      rowHeaders: [...document.querySelectorAll('#fleet tr[data-domain]')].map((tr) => tr.firstElementChild?.getAttribute('scope')),
      caption: document.querySelector('#fleet caption')?.textContent,
      unlabelled: [...document.querySelectorAll('input, select, textarea')].filter((i) => (i as HTMLInputElement).labels?.length === 0)
        .length,
      live: document.getElementById('live')?.getAttribute('role'),
      viewport: document.querySelector('meta[name="viewport"]')?.getAttribute('content'),
    }));
    expect(facts).toMatchObject({
      lang: 'en',
      h1: 1,
      unlabelled: 0,
      live: 'status',
      viewport: expect.stringContaining('width=device-width'),
    });
    expect(facts.title).not.toBe('');
    expect(facts.caption).toBeTruthy();
    expect(facts.colHeaders).toEqual(['col', 'col', 'col', 'col']);
    expect(facts.rowHeaders.length).toBeGreaterThan(0);
    expect(new Set(facts.rowHeaders)).toEqual(new Set(['row']));
    // The accessibility tree names the table and its first column header.
    const tree = await w.page.accessibility.snapshot({ interestingOnly: true });
    expect(JSON.stringify(tree)).toContain('Domains by host');
    expect(w.problems).toEqual([]);
    await w.page.close();
  });

  it('says when a host is down, also after a reload, and lists its domains again once it is back', async () => {
    const w = await openFleet();
    const beta = fleet.fakes.get('beta')!;
    const hostHeads = () =>
      w.page.evaluate(() => [...document.querySelectorAll<HTMLElement>('#fleet th[scope="rowgroup"]')].map((th) => th.innerText));
    beta.acceptConnections = false;
    beta.dropClients();
    await waitInPage(w.page, 'host beta down', () =>
      [...document.querySelectorAll('#fleet th[scope="rowgroup"]')].some(
        (th) => /beta/.test(th.textContent!) && /down/.test(th.textContent!),
      ),
    );
    // A page loaded meanwhile learns it from GET /domains (unavailableHosts): the host is not silently missing.
    await w.page.reload();
    await waitInPage(w.page, 'the fleet after a reload', () => document.getElementById('live')?.className === 'live');
    await waitInPage(w.page, 'host beta shown as down', () =>
      [...document.querySelectorAll('#fleet th[scope="rowgroup"]')].some((th) => /beta/.test(th.textContent!)),
    );
    expect(await hostHeads()).toEqual([expect.stringMatching(/alpha/), expect.stringMatching(/beta.*down|down.*beta/)]);
    expect((await fleetRows(w.page)).filter((r) => r.host === 'beta')).toEqual([]);

    beta.acceptConnections = true;
    await waitInPage(
      w.page,
      "beta's domain listed again",
      () => document.querySelector('#fleet tbody[data-host="beta"] tr[data-domain="web1"]') !== null,
    );
    expect(await hostHeads()).toEqual([expect.stringMatching(/alpha/), expect.not.stringMatching(/down/)]);
    expect(w.problems).toEqual([]);
    await w.page.close();
  });
});
