// Debian's chromium (scripts/chromium.sh installs it when missing), driven headless by puppeteer-core, and pages
// that record every console error, uncaught exception, Content-Security-Policy violation, failed request and error
// status the browser meets: the fleet view must load with none of them. Page text is read with innerText on purpose
// (the text as rendered, what a reader sees), so Biome's useDomNodeTextContent is off under test/browser (biome.json).
import { execFileSync } from 'node:child_process';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export function chromiumPath(): string {
  return execFileSync('bash', ['scripts/chromium.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 }).trim();
}

export async function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // As root, chromium's sandbox refuses to start; the pages it loads here are the gateway's and the tests' own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
  });
}

export interface Problem {
  kind: 'console' | 'pageerror' | 'csp' | 'requestfailed' | 'status';
  text: string;
  url: string;
}

export interface WatchedPage {
  page: Page;
  /** Every problem so far. */
  problems: Problem[];
  /** Every URL the page asked for so far, in order. */
  requests: string[];
}

export const DESKTOP = { width: 1000, height: 800 };
/** An iPhone SE's CSS pixels: the narrowest phone still common. */
export const PHONE = { width: 375, height: 667, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

export async function openPage(browser: Browser, viewport: Parameters<Page['setViewport']>[0] = DESKTOP): Promise<WatchedPage> {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  const problems: Problem[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push({ kind: 'console', text: m.text(), url: m.location().url ?? '' });
  });
  page.on('pageerror', (e) => problems.push({ kind: 'pageerror', text: String(e), url: '' }));
  page.on('requestfailed', (r) => {
    // A stream cut when the page goes away or reconnects is no fault of the page.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED')
      problems.push({ kind: 'requestfailed', text: r.failure()?.errorText ?? '', url: r.url() });
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push({ kind: 'status', text: String(r.status()), url: r.url() });
  });
  page.on('request', (r) => void requests.push(r.url()));
  // Chromium logs a violation to the console too; the event says which directive, should the wording change.
  await page.exposeFunction('__cspViolation', (text: string, url: string) => void problems.push({ kind: 'csp', text, url }));
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { __cspViolation(t: string, u: string): void }).__cspViolation(e.violatedDirective, e.blockedURI);
    });
  });
  return { page, problems, requests };
}

/**
 * The problems a test did not provoke: `allowStatus` accepts the answers of that status (and the console line
 * chromium writes for each) that the test caused on purpose, e.g. a 401 for a wrong token.
 */
export function unexpected(problems: Problem[], allowStatus?: number): Problem[] {
  if (allowStatus === undefined) return problems;
  return problems.filter((p) => {
    if (p.kind === 'status') return p.text !== String(allowStatus);
    if (p.kind === 'console') return !new RegExp(`status of ${allowStatus}\\b`).test(p.text);
    return true;
  });
}

/**
 * Waits until fn, run in the page with args, answers something truthy; the failure says what was awaited and what the
 * page showed then.
 */
export async function waitInPage<A extends unknown[]>(
  page: Page,
  what: string,
  fn: (...args: A) => unknown,
  args: A = [] as unknown as A,
  timeoutMs = 10_000,
): Promise<void> {
  try {
    await page.waitForFunction(fn as (...a: unknown[]) => unknown, { timeout: timeoutMs, polling: 50 }, ...args);
  } catch (err) {
    const seen = await page.evaluate(() => document.body.innerText).catch(() => '(page gone)');
    throw new Error(`${what}: not within ${timeoutMs} ms (${(err as Error).message}); the page shows:\n${seen}`);
  }
}

/** Waits until a domain's cell in the fleet table (field: state, agent or addresses) reads `text` (or contains it). */
export function waitForCell(
  page: Page,
  cell: { host: string; domain: string; field: string },
  text: string,
  opts: { contains?: boolean; timeoutMs?: number } = {},
): Promise<void> {
  return waitInPage(
    page,
    `${cell.host}/${cell.domain}: ${cell.field} ${opts.contains ? 'containing' : 'reading'} '${text}'`,
    (host: string, domain: string, field: string, want: string, contains: boolean) => {
      const rows = [...document.querySelectorAll<HTMLElement>('#fleet tbody[data-host] tr[data-domain]')];
      const row = rows.find((tr) => tr.dataset.domain === domain && tr.closest<HTMLElement>('tbody')!.dataset.host === host);
      const got = row?.querySelector<HTMLElement>(`[data-field="${field}"]`)?.innerText.trim();
      return got !== undefined && (contains ? got.includes(want) : got === want);
    },
    [cell.host, cell.domain, cell.field, text, opts.contains ?? false],
    opts.timeoutMs,
  );
}

export interface FleetRow {
  host: string;
  name: string;
  state: string;
  agent: string;
  addresses: string[];
}

/**
 * The fleet table as a reader sees it: each domain row with its host (the group it is in) and its cells' text. Read
 * in one evaluation: the page redraws the table on every change, and an element found in one call may be detached by
 * the next (whose computed style is then empty).
 */
export function fleetRows(page: Page): Promise<FleetRow[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('#fleet tbody[data-host] tr[data-domain]')].map((tr) => {
      const cell = (field: string) => (tr.querySelector(`[data-field="${field}"]`) as HTMLElement | null)?.innerText.trim() ?? '';
      return {
        host: (tr.closest('tbody') as HTMLElement).dataset.host ?? '',
        name: (tr.querySelector('th') as HTMLElement).innerText.trim(),
        state: cell('state'),
        agent: cell('agent'),
        addresses: [...tr.querySelectorAll('[data-field="addresses"] li')].map((li) => (li as HTMLElement).innerText.trim()),
      };
    }),
  );
}
