// The fleet view end to end: the built gateway (dist/server.js, as test/e2e starts it) against the real libvirtd and
// the test guests (test/e2e/guests.json), in a real browser. /ui lists every test guest with its state, agent state
// and the address its provisioning gave it; then guest-power reboots and the page, never reloaded, shows its agent
// going away and coming back. Needs the provisioned guests (scripts/provision-guests.sh), like test/e2e.
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '../e2e/support/gateway-process.js';
import { agentCommand, assertProvisioned, guests, waitFor } from '../e2e/support/guests.js';
import { bootId, ensurePowerGuestRunning, powerGuest } from '../e2e/support/power.js';
import { fleetRows, launchBrowser, openPage, waitInPage, type WatchedPage } from './support/browser.js';

let browser: Browser;
let gw: GatewayProcess;
let w: WatchedPage;

beforeAll(async () => {
  assertProvisioned();
  await ensurePowerGuestRunning();
  // An events section: the gateway reads an agent's addresses when it connects (the addresses events); the periodic
  // read stays out of the test's time.
  gw = await startGateway({ events: { addressesPollMs: 600_000 } });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await ensurePowerGuestRunning();
  await gw?.stop();
});

/** The host the gateway lists a guest under (the one libvirt host's name), from the page's first test. */
let hosts = new Map<string, string>();
const hostOf = (name: string) => hosts.get(name) ?? 'local';

describe('the fleet view with the real guests', () => {
  it('lists every test guest with its state, agent state and address', async () => {
    w = await openPage(browser);
    await w.page.goto(`${gw.url}/ui/`);
    const withIp = guests.filter((g) => g.running && g.agent);
    await waitInPage(
      w.page,
      'every running guest with an agent listed with its address',
      (names: string[]) =>
        document.getElementById('live')?.className === 'live' &&
        names.every((n) => document.querySelector(`#fleet tr[data-domain="${n}"] [data-field="addresses"] li`)),
      [withIp.map((g) => g.name)],
      30_000,
    );
    const rows = await fleetRows(w.page);
    hosts = new Map(rows.map((r) => [r.name, r.host]));
    for (const g of guests) {
      const row = rows.find((r) => r.name === g.name);
      expect(row, g.name).toBeDefined();
      // What the guest is, as provisioned (guests.json), not as the gateway says.
      expect(row!.state, g.name).toBe(g.running ? 'running' : 'shutoff');
      if (g.running && g.agent) {
        expect(row!.agent, g.name).toBe('connected');
        expect(row!.addresses, g.name).toContain(g.ip.split('/')[0]);
      } else {
        // No agent channel at all says so; a stopped guest's agent is simply not connected.
        expect(row!.agent, g.name).toBe(g.agent ? 'disconnected' : 'none');
        expect(row!.addresses, g.name).toEqual([]);
      }
    }
    expect(w.problems).toEqual([]);
  });

  it.each(['guest1', 'debian13'])("shows %s's OS, file systems and interfaces as its agent reports them", async (name) => {
    const g = guests.find((x) => x.name === name)!;
    // The agent's own words, through virsh: the page must show them, not something of the gateway's making.
    const os = agentCommand(name, { execute: 'guest-get-osinfo' }) as { 'pretty-name'?: string; name?: string; 'kernel-release': string };
    const fs = agentCommand(name, { execute: 'guest-get-fsinfo' }) as { mountpoint: string }[];
    const page = await openPage(browser);
    await page.page.goto(`${gw.url}/ui/#/domain/${encodeURIComponent(hostOf(name))}/${g.uuid}`);
    await waitInPage(
      page.page,
      'the three sections',
      () => ['domain-os', 'domain-filesystems', 'domain-interfaces'].every((id) => document.querySelector(`#${id} dl, #${id} table`)),
      [],
      30_000,
    );
    const text = (id: string) => page.page.evaluate((i: string) => document.getElementById(i)!.innerText, id);
    expect(await text('domain-os')).toContain(os['pretty-name'] ?? os.name);
    expect(await text('domain-os')).toContain(os['kernel-release']);
    for (const f of fs) expect(await text('domain-filesystems')).toContain(f.mountpoint);
    expect(await text('domain-interfaces')).toContain(g.ip);
    expect(page.problems).toEqual([]);
    await page.page.close();
  });

  it("shows guest-power's agent going away and coming back during a reboot, without a reload", async () => {
    const name = powerGuest.name;
    const before = bootId(name);
    const timeOrigin = await w.page.evaluate(() => performance.timeOrigin);
    // Every value guest-power's agent cell takes, and every announcement, as the page changes: a state shown
    // between two polls of the test would otherwise be missed.
    await w.page.evaluate((domain: string) => {
      const seen = { agent: [] as string[], announced: [] as string[] };
      (window as unknown as { seen: typeof seen }).seen = seen;
      const read = () => {
        const row = [...document.querySelectorAll<HTMLElement>('#fleet tr[data-domain]')].find((tr) => tr.dataset.domain === domain);
        const agent = row?.querySelector('[data-field="agent"]')?.textContent;
        if (agent && seen.agent.at(-1) !== agent) seen.agent.push(agent);
      };
      new MutationObserver(read).observe(document.getElementById('fleet')!, { childList: true, subtree: true, characterData: true });
      const announce = document.getElementById('announce')!;
      new MutationObserver(() => seen.announced.push(announce.textContent ?? '')).observe(announce, {
        childList: true,
        characterData: true,
        subtree: true,
      });
      read();
    }, name);

    const res = await fetch(`${gw.url}/domains/${name}/power`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'reboot' }),
    });
    expect(res.status).toBe(202);
    await waitInPage(
      w.page,
      `${name}'s agent disconnected, then connected again`,
      () => {
        const agent = (window as unknown as { seen: { agent: string[] } }).seen.agent;
        const gone = agent.indexOf('disconnected');
        return gone > 0 && agent.indexOf('connected', gone) > gone;
      },
      [],
      120_000,
    );
    const seen = await w.page.evaluate(() => (window as unknown as { seen: { agent: string[]; announced: string[] } }).seen);
    expect(seen.agent[0]).toBe('connected');
    expect(seen.agent.at(-1)).toBe('connected');
    expect(seen.announced).toEqual(expect.arrayContaining([`${name}: agent disconnected.`, `${name}: agent connected.`]));
    // libvirt sends several reboot events for one reboot: a screen reader hears it once.
    expect(seen.announced.filter((t, i) => t === seen.announced[i - 1])).toEqual([]);
    // It did reboot (a new boot id, read around the gateway), and the page is the one loaded before.
    await waitFor('the new boot id', async () => bootId(name) !== before, 30_000, 1000);
    expect(await w.page.evaluate(() => performance.timeOrigin)).toBe(timeOrigin);
    expect((await fleetRows(w.page)).find((r) => r.name === name)).toMatchObject({ state: 'running', agent: 'connected' });
    expect(w.problems).toEqual([]);
  });
});
