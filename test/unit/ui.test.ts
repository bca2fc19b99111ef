// The fleet view's files (/ui): served without a token under a strict Content-Security-Policy, absent with
// ui.enabled false, hidden from the API document; the files themselves load nothing from elsewhere, run no inline
// script, keep the token in sessionStorage only, and call only routes of the public API.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { UI_ROOT } from '../../src/http/ui.js';
import { build } from '../support/harness.js';

const tokens = { mode: 'tokens' as const, identities: [{ name: 'ui', tokenSha256: tokenSha256(newToken()), scopes: ['read' as const] }] };
const files = readdirSync(UI_ROOT);

describe('/ui', () => {
  it('serves the page and its files without a token, under a Content-Security-Policy allowing only its own origin', async () => {
    const { call } = await build({ domains: ['web1'], config: { auth: tokens } });
    const redirect = await call('GET', '/ui');
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe('/ui/');
    const page = await call('GET', '/ui/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/unsafe|https?:|data:|\*/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    for (const f of files.filter((f) => f !== 'index.html')) {
      const r = await call('GET', `/ui/${f}`);
      expect(r.status, f).toBe(200);
      expect(r.headers['content-security-policy']).toBe(csp);
    }
    expect((await call('GET', '/ui/app.js')).headers['content-type']).toMatch(/javascript/);
    // The data is not public: the API still asks for the token.
    expect((await call('GET', '/domains')).status).toBe(401);
    const missing = await call('GET', '/ui/nothing.js');
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toMatch(/problem\+json/);
    expect((await call('GET', '/ui/../package.json')).status).not.toBe(200);
  });

  it('is absent (404) with ui.enabled false', async () => {
    const { call } = await build({ domains: ['web1'], config: { ui: { enabled: false } } });
    for (const url of ['/ui', '/ui/', '/ui/app.js', '/ui/index.html']) expect((await call('GET', url)).status, url).toBe(404);
  });

  it('is not in the API document', async () => {
    const { call } = await build({ domains: ['web1'] });
    const doc = (await call('GET', '/openapi.json')).body as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/ui'))).toEqual([]);
  });
});

describe('the files of ui/', () => {
  const text = (f: string) => readFileSync(join(UI_ROOT, f), 'utf8');

  it('load nothing from another origin and run no inline script or style', () => {
    for (const f of files) {
      const t = text(f);
      expect(t, f).not.toMatch(/(src|href)=["'](https?:)?\/\//);
      expect(t, f).not.toMatch(/@import|url\(/);
    }
    const html = text('index.html');
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="app.js">']);
    expect(html).not.toMatch(/<script[^>]*>[^<]+<\/script>/);
    expect(html).not.toMatch(/\son[a-z]+=|style=|<style/);
  });

  it('keep the token in sessionStorage only, and never write HTML from data', () => {
    const js = files
      .filter((f) => f.endsWith('.js'))
      .map(text)
      .join('\n');
    expect(js).toContain('sessionStorage');
    expect(js).not.toMatch(/localStorage|document\.cookie|innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    expect(js).not.toMatch(/[?&]token=|access_token/);
  });

  it('call only routes the public API documents', async () => {
    const doc = JSON.parse(readFileSync('openapi/openapi.json', 'utf8')) as { paths: Record<string, unknown> };
    const js = text('app.js');
    const called = [...js.matchAll(/api\(\s*['`]([a-z-]+)/g), ...js.matchAll(/`\$\{base\}\/([a-z-]+)`/g)].map((m) => m[1]!);
    expect(called.length).toBeGreaterThanOrEqual(5);
    for (const path of called) {
      const documented = Object.keys(doc.paths).some((p) => p === `/${path}` || p === `/domains/{domain}/${path}`);
      expect(documented, path).toBe(true);
    }
  });
});
