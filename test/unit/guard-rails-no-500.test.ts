// odd but well-formed inputs to the new raw-authorization and exec-ownership code must be 4xx, never 5xx.
import { describe, expect, it } from 'vitest';
import { SCOPES } from '../../src/config/scopes.js';
import { startEnv, type Env } from '../support/guard-rail-env.js';

let env: Env | null = null;
const CASES: [string, unknown][] = [
  ['guest-file-open', { path: '/x', mode: null }],
  ['guest-file-open', { path: '/x', mode: 'R' }],
  ['guest-file-open', { path: 'C:' }],
  ['guest-file-open', { path: ['/x'] }],
  ['guest-file-read', { handle: '1000', count: 1 }],
  ['guest-file-read', { handle: 1000.5 }],
  ['guest-file-read', { handle: -0 }],
  ['guest-file-read', { handle: 1e300 }],
  ['guest-file-read', { handle: 1000, count: -5 }],
  ['guest-file-close', {}],
  ['guest-exec', { path: '/usr/bin/id', env: null }],
  ['guest-exec', { path: '/usr/bin/id', env: 'LANG=C' }],
  ['guest-exec', { path: '/usr/bin/id', env: [1] }],
  ['guest-exec', { path: '/usr/bin/id', env: ['=C:=C:\\'] }],
  ['guest-exec', { path: '' }],
  ['guest-exec', { path: 7 }],
];

describe('no 5xx from the new checks', () => {
  for (const policies of [undefined, { files: { read: { allow: ['/srv/**'] } }, exec: { allow: ['/usr/bin/id'], env: ['LANG'] } }]) {
    it(`raw commands with odd arguments (${policies ? 'with' : 'without'} policies)`, async () => {
      env = await startEnv({ root: { scopes: [...SCOPES], ...(policies ? { policies } : {}) } });
      const bad: string[] = [];
      for (const [execute, args] of CASES) {
        const r = await env.raw(env.tokens.root!, execute, args as object);
        // 502: the fake agent refused what the gateway passed on; acceptable. 500/503: not.
        if (r.status === 500 || r.status === 503) bad.push(`${execute} ${JSON.stringify(args)} -> ${r.status} ${r.body}`);
      }
      for (const url of [
        '/domains/web1/exec/2147483648',
        '/domains/web1/exec/-1',
        '/domains/web1/exec/1e3',
        '/domains/web1/exec/0x10',
        '/domains/web1/exec/%20',
      ]) {
        const r = await env.call(env.tokens.root!, 'GET', url);
        if (r.status >= 500) bad.push(`${url} -> ${r.status}`);
      }
      expect(bad).toEqual([]);
    });
  }

  it('JSON tricks on the raw endpoint: duplicate keys decide as the agent would see them; __proto__ is refused', async () => {
    env = await startEnv({ fenced: { scopes: [...SCOPES], policies: { files: { read: { allow: ['/srv/**'] } } } } });
    env.files.files.set('/srv/ok/a.txt', Buffer.from('ok'));
    env.files.files.set('/etc/shadow', Buffer.from('root:x'));
    const post = (text: string) =>
      env!.call(env!.tokens.fenced!, 'POST', '/domains/web1/agent/commands', text, { 'content-type': 'application/json' });
    // The gateway parses once and re-serialises what it checked: the last duplicate wins for both.
    expect((await post('{"execute":"guest-file-open","arguments":{"path":"/srv/ok/a.txt","path":"/etc/shadow"}}')).status).toBe(403);
    expect(
      (await post('{"execute":"guest-file-open","arguments":{"path":"/srv/ok/a.txt"},"arguments":{"path":"/etc/shadow"}}')).status,
    ).toBe(403);
    expect(
      (await post('{"execute":"guest-file-open","arguments":{"__proto__":{"path":"/srv/ok/a.txt"},"path":"/etc/shadow"}}')).status,
    ).toBe(400);
    expect(
      (await post('{"execute":"guest-file-open","arguments":{"constructor":{"prototype":{"path":"/srv/ok/a.txt"}},"path":"/etc/shadow"}}'))
        .status,
    ).toBe(400);
    expect(env.sent()).toEqual([]);
  });
});
